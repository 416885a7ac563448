// `slugify`: turns a title into a URL slug.
//
// A chela tool plugin in JavaScript (componentize-js, world `tool-plugin`).
// Built by `cargo xtask build-plugins` into target/polyglot/tool_slugify_js.wasm.
// A thrown `{tag, val}` becomes the WIT `tool-error` variant.
import { log } from 'chela:plugin/log@0.1.0';

const SCHEMA = JSON.stringify({
  type: 'object',
  properties: { text: { type: 'string' } },
  required: ['text'],
});

// componentize-js's engine (StarlingMonkey) has no Unicode normalisation:
// `String.prototype.normalize` aborts the component. Transliterate instead.
const LATIN = {
  à: 'a', á: 'a', â: 'a', ã: 'a', ä: 'a', å: 'a', æ: 'ae', ç: 'c', è: 'e', é: 'e', ê: 'e', ë: 'e',
  ì: 'i', í: 'i', î: 'i', ï: 'i', ñ: 'n', ò: 'o', ó: 'o', ô: 'o', õ: 'o', ö: 'o', ø: 'o', œ: 'oe',
  ù: 'u', ú: 'u', û: 'u', ü: 'u', ý: 'y', ÿ: 'y', ß: 'ss',
};

function slugify(text) {
  const ascii = Array.from(text.toLowerCase(), (c) => LATIN[c] ?? c).join('');
  return ascii.replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

export const tool = {
  describe() {
    return { name: 'slugify', description: 'Turns a title into a URL slug.', parametersSchema: SCHEMA, httpHosts: [] };
  },
  invoke(context, args) {
    let parsed;
    try { parsed = JSON.parse(args); } catch (e) { throw { tag: 'invalid-arguments', val: `arguments are not JSON: ${e}` }; }
    if (typeof parsed?.text !== 'string') throw { tag: 'invalid-arguments', val: '`text` (a string) is required' };
    log('info', `slugify for agent ${context.agentId}`);
    return slugify(parsed.text);
  },
};
