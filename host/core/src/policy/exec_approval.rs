//! Whether a command may run on the host (OpenClaw's exec approvals policy,
//! `docs/tools/exec-approvals.md`): `tools.exec.mode` (`deny` |
//! `allowlist` | `ask` | `auto` | `full`) or the legacy pair
//! `tools.exec.security` (`deny` | `allowlist` | `full`) and
//! `tools.exec.ask` (`off` | `on-miss` | `always`), the agent's own
//! `tools.exec` over the global one. Both written: the stricter of the two
//! holds. Unset: `full` / `off`, OpenClaw's gateway default (and what
//! chela did before reading them).
//!
//! The allowlist is `tools.exec.safeBins`: stdin-only filters (`wc`,
//! `sort`, `cut`) that run without an approval. A command matches when
//! every segment of it (split at `|`, `&&`, `||`, `;`) is a safe bin found
//! in a trusted directory (`/bin`, `/usr/bin`, `tools.exec.safeBinTrustedDirs`)
//! before any other `PATH` entry, given only options and numbers — no file
//! operand, path, redirection, substitution or expansion. A command that
//! cannot be read that way is a miss. Interpreters and `jq` are never safe
//! bins (OpenClaw refuses them too).
//!
//! A command that needs an approval (`ask: always`, or a miss under
//! `on-miss`) is [`Verdict::Ask`]: where the host can ask (the gateway
//! posts an approval prompt in the session's chat, answered with
//! `/approve <id> allow-once|allow-always|deny` by an owner) it waits for
//! that; where it cannot, OpenClaw's `askFallback` default, `deny`, refuses
//! it ([`Verdict::fallback`]). The policy only governs host execution
//! (sandbox off, or elevated); sandboxed commands are the sandbox's.
//!
//! Must not: run anything or touch the file system beyond checking where a
//! program is (`Path::is_file`).

use std::path::{Path, PathBuf};

use crate::config::schema::Config;
use crate::ids::normalize_agent_id;

/// `tools.exec.security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Security {
    Deny,
    Allowlist,
    #[default]
    Full,
}

/// `tools.exec.ask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Ask {
    #[default]
    Off,
    OnMiss,
    Always,
}

/// One agent's host exec policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostExecPolicy {
    pub security: Security,
    pub ask: Ask,
    /// `tools.exec.safeBins` (names).
    pub safe_bins: Vec<String>,
    /// `/bin`, `/usr/bin` and `tools.exec.safeBinTrustedDirs`.
    pub trusted_dirs: Vec<PathBuf>,
    /// The `PATH` host commands get (a safe bin must not be shadowed in it).
    pub path: Vec<PathBuf>,
    /// Where the policy was read (`tools.exec.mode`, `agents.list[1].tools.exec.security`…), for messages.
    pub source: String,
}

/// The `PATH` host commands run with.
pub const HOST_PATH: [&str; 3] = ["/usr/local/bin", "/usr/bin", "/bin"];

/// Programs that evaluate code or read anything they are told to: never safe bins.
const NEVER_SAFE: [&str; 16] = [
    "sh", "bash", "zsh", "dash", "ksh", "fish", "python", "python3", "node", "deno", "ruby", "perl", "php", "lua",
    "jq", "env",
];

/// What the policy says of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Run,
    Refuse(String),
    /// It runs only once approved; why it needs an approval.
    Ask(String),
}

impl Verdict {
    /// The verdict where no one can be asked: OpenClaw's `askFallback: deny`.
    pub fn fallback(self) -> Verdict {
        match self {
            Verdict::Ask(why) => Verdict::Refuse(format!(
                "{why}; no approval prompt can reach anyone here, so it is refused (OpenClaw's askFallback: deny)"
            )),
            v => v,
        }
    }
}

/// An answer to an approval prompt (`/approve <id> <decision>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run this command once.
    AllowOnce,
    /// Run it, and run the same command line without asking from now on.
    AllowAlways,
    Deny,
}

impl Decision {
    /// OpenClaw's decision words (`allow-once`, `allow-always`, `deny`) and their short forms.
    pub fn parse(raw: &str) -> Option<Decision> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "allow-once" | "once" | "allow" | "yes" => Some(Decision::AllowOnce),
            "allow-always" | "always" => Some(Decision::AllowAlways),
            "deny" | "no" | "reject" => Some(Decision::Deny),
            _ => None,
        }
    }
}

fn setting<'a>(exec: Option<&'a serde_json::Value>, key: &str) -> Option<&'a str> {
    exec?.get(key)?.as_str()
}

fn security_of(raw: &str) -> Option<Security> {
    match raw {
        "deny" => Some(Security::Deny),
        "allowlist" => Some(Security::Allowlist),
        "full" => Some(Security::Full),
        _ => None,
    }
}

fn ask_of(raw: &str) -> Option<Ask> {
    match raw {
        "off" => Some(Ask::Off),
        "on-miss" => Some(Ask::OnMiss),
        "always" => Some(Ask::Always),
        _ => None,
    }
}

/// `tools.exec.mode` as a (security, ask) pair (OpenClaw's table; `auto`'s
/// reviewer is not built, so its misses ask, as `ask`'s do).
fn mode_of(raw: &str) -> Option<(Security, Ask)> {
    match raw {
        "deny" => Some((Security::Deny, Ask::Off)),
        "allowlist" => Some((Security::Allowlist, Ask::Off)),
        "ask" | "auto" => Some((Security::Allowlist, Ask::OnMiss)),
        "full" => Some((Security::Full, Ask::Off)),
        _ => None,
    }
}

fn strings(exec: Option<&serde_json::Value>, key: &str) -> Vec<String> {
    let items = exec.and_then(|e| e.get(key)).and_then(|v| v.as_array());
    items.into_iter().flatten().filter_map(|v| v.as_str()).map(|s| s.trim().to_string()).collect()
}

/// `agent_id`'s host exec policy under `cfg`. An unknown value (the
/// schema check reports it) is read as the strictest.
pub fn host_exec_policy(cfg: &Config, agent_id: &str) -> HostExecPolicy {
    let id = normalize_agent_id(Some(agent_id));
    let own = cfg.agent(&id).and_then(|(i, a)| Some((i, a.tools.as_ref()?.exec.as_ref()?)));
    let global = cfg.tools.as_ref().and_then(|t| t.exec.as_ref());
    let sets_policy = |e: &serde_json::Value| ["mode", "security", "ask"].iter().any(|k| e.get(k).is_some());
    // The agent's own policy keys replace the global ones as a whole.
    let (exec, at) = match &own {
        Some((path, e)) if sets_policy(e) => (Some(*e), format!("{path}.tools.exec")),
        _ => (global, "tools.exec".to_string()),
    };
    let mut security = Security::Full;
    let mut ask = Ask::Off;
    let mut source = Vec::new();
    if let Some(raw) = setting(exec, "mode") {
        let (s, a) = mode_of(raw).unwrap_or((Security::Deny, Ask::Off));
        (security, ask) = (security.min(s), ask.max(a));
        source.push(format!("{at}.mode: {raw}"));
    }
    if let Some(raw) = setting(exec, "security") {
        security = security.min(security_of(raw).unwrap_or(Security::Deny));
        source.push(format!("{at}.security: {raw}"));
    }
    if let Some(raw) = setting(exec, "ask") {
        ask = ask.max(ask_of(raw).unwrap_or(Ask::Always));
        source.push(format!("{at}.ask: {raw}"));
    }
    // Safe bins: the agent's list over the global one.
    let pick = |key: &str| {
        let own_list = own.as_ref().map(|(_, e)| strings(Some(e), key)).filter(|l| !l.is_empty());
        own_list.unwrap_or_else(|| strings(global, key))
    };
    let mut trusted_dirs: Vec<PathBuf> = ["/bin", "/usr/bin"].iter().map(PathBuf::from).collect();
    trusted_dirs.extend(pick("safeBinTrustedDirs").into_iter().map(PathBuf::from).filter(|p| p.is_absolute()));
    HostExecPolicy {
        security,
        ask,
        safe_bins: pick("safeBins"),
        trusted_dirs,
        path: HOST_PATH.iter().map(PathBuf::from).collect(),
        source: if source.is_empty() { "the default (full, ask off)".into() } else { source.join(", ") },
    }
}

/// Why a segment of the command is not a safe-bin use, `None` when it is one.
fn segment_miss(policy: &HostExecPolicy, words: &[String], exists: &dyn Fn(&Path) -> bool) -> Option<String> {
    let Some((program, args)) = words.split_first() else { return Some("an empty command segment".into()) };
    if !policy.safe_bins.iter().any(|b| b == program) {
        return Some(format!("`{program}` is not in tools.exec.safeBins"));
    }
    if NEVER_SAFE.contains(&program.as_str()) {
        return Some(format!("`{program}` runs code or reads what it is told: it cannot be a safe bin"));
    }
    // The first `PATH` entry holding it is the one `sh` runs: it must be trusted.
    match policy.path.iter().find(|dir| exists(&dir.join(program))) {
        Some(dir) if policy.trusted_dirs.iter().any(|t| t == dir) => {}
        Some(dir) => return Some(format!("`{program}` is found first in {}, not a trusted dir", dir.display())),
        None => return Some(format!("`{program}` is not installed in a trusted dir")),
    }
    let operand = args.iter().find(|a| {
        let option = a.starts_with('-') && a.len() > 1;
        let number = !a.is_empty() && a.chars().all(|c| c.is_ascii_digit());
        !(option || number) || a.contains(['/', '~', '='])
    });
    operand.map(|a| format!("`{program}` is given `{a}`: a safe bin reads stdin only, with options"))
}

/// Whether `argv` (a shell command is `sh -c <text>`) is a safe-bin use;
/// `Err` says where it misses.
fn allowlisted(
    policy: &HostExecPolicy,
    program: &str,
    args: &[String],
    exists: &dyn Fn(&Path) -> bool,
) -> Result<(), String> {
    let words: Vec<String> = match (program, args) {
        ("sh", [flag, text]) if flag == "-c" => {
            if text.contains(['`', '$', '<', '>', '(', ')', '{', '}', '\n', '*', '?', '[', '\\']) {
                return Err("the command uses substitution, expansion, globbing or redirection".into());
            }
            shlex::split(text).ok_or("the command's quoting does not parse")?
        }
        _ => std::iter::once(program.to_string()).chain(args.iter().cloned()).collect(),
    };
    let mut segment = Vec::new();
    for word in words.into_iter().chain(std::iter::once(";".to_string())) {
        match word.as_str() {
            "|" | "&&" | "||" | ";" => {
                if let Some(why) = segment_miss(policy, &segment, exists) {
                    return Err(why);
                }
                segment.clear();
            }
            w if w.contains(['|', '&', ';']) => return Err(format!("`{w}` joins commands the policy cannot read")),
            _ => segment.push(word),
        }
    }
    Ok(())
}

/// What `policy` says of running `program` with `args` on the host.
pub fn judge(policy: &HostExecPolicy, program: &str, args: &[String]) -> Verdict {
    judge_with(policy, program, args, &|p| p.is_file())
}

fn judge_with(policy: &HostExecPolicy, program: &str, args: &[String], exists: &dyn Fn(&Path) -> bool) -> Verdict {
    let source = &policy.source;
    if policy.security == Security::Deny {
        return Verdict::Refuse(format!("running commands on the host is off for this agent ({source})"));
    }
    let matched = allowlisted(policy, program, args, exists);
    let needs_approval = match (policy.ask, &matched) {
        (Ask::Always, _) => Some("every command needs approval".to_string()),
        (Ask::OnMiss, Err(why)) => Some(format!("it is not allowlisted ({why})")),
        _ => None,
    };
    if let Some(why) = needs_approval {
        return Verdict::Ask(format!("this command needs approval: {why} ({source})"));
    }
    match (policy.security, matched) {
        (Security::Allowlist, Err(why)) => {
            Verdict::Refuse(format!("only allowlisted commands run on the host ({source}): {why}"))
        }
        _ => Verdict::Run,
    }
}

/// A message's own `/exec security=… ask=…`: it can only tighten the
/// policy in force, and only for the turn it comes with (OpenClaw's
/// turn-scoped exec overrides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tightening {
    pub security: Option<Security>,
    pub ask: Option<Ask>,
}

impl Tightening {
    pub fn is_empty(&self) -> bool {
        self.security.is_none() && self.ask.is_none()
    }

    /// `security=… ask=…` as written.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.security {
            parts.push(format!("security={}", s.as_str()));
        }
        if let Some(a) = self.ask {
            parts.push(format!("ask={}", a.as_str()));
        }
        parts.join(" ")
    }
}

impl Security {
    /// Its config value (`deny`, `allowlist`, `full`).
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Deny => "deny",
            Security::Allowlist => "allowlist",
            Security::Full => "full",
        }
    }

    /// A config value as a level.
    pub fn parse(raw: &str) -> Option<Security> {
        security_of(raw)
    }
}

impl Ask {
    /// Its config value (`off`, `on-miss`, `always`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ask::Off => "off",
            Ask::OnMiss => "on-miss",
            Ask::Always => "always",
        }
    }

    /// A config value as a level.
    pub fn parse(raw: &str) -> Option<Ask> {
        ask_of(raw)
    }
}

impl HostExecPolicy {
    /// The policy with a message's `/exec` applied: the stricter security,
    /// the more asking `ask`; never looser than it was.
    pub fn tightened(mut self, t: &Tightening) -> HostExecPolicy {
        if t.is_empty() {
            return self;
        }
        let before = (self.security, self.ask);
        self.security = t.security.map_or(self.security, |s| self.security.min(s));
        self.ask = t.ask.map_or(self.ask, |a| self.ask.max(a));
        if (self.security, self.ask) != before {
            self.source = format!("{}; /exec {} for this message", self.source, t.describe());
        }
        self
    }

    /// One line for `/exec` and `chela doctor`.
    pub fn describe(&self) -> String {
        let (security, ask) = (self.security.as_str(), self.ask.as_str());
        let bins = if self.safe_bins.is_empty() { "none".to_string() } else { self.safe_bins.join(", ") };
        format!("security {security}, ask {ask} ({}); safe bins: {bins}", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_can_only_tighten_the_policy() {
        let full = HostExecPolicy { source: "defaults".into(), ..HostExecPolicy::default() };
        let t = Tightening { security: Some(Security::Allowlist), ask: Some(Ask::Always) };
        let p = full.clone().tightened(&t);
        assert_eq!((p.security, p.ask), (Security::Allowlist, Ask::Always));
        assert_eq!(p.source, "defaults; /exec security=allowlist ask=always for this message");
        let strict = HostExecPolicy { security: Security::Deny, ask: Ask::OnMiss, ..full.clone() };
        let loosen = Tightening { security: Some(Security::Full), ask: Some(Ask::Off) };
        assert_eq!(strict.clone().tightened(&loosen), strict, "never looser than the config");
        assert_eq!(full.clone().tightened(&Tightening::default()), full);
    }

    fn policy(text: &str, agent: &str) -> HostExecPolicy {
        host_exec_policy(&crate::config::load_str(text, None).expect("config loads").config, agent)
    }

    fn sh(text: &str) -> (String, Vec<String>) {
        ("sh".into(), vec!["-c".into(), text.into()])
    }

    /// `wc`, `sort` and `head` in /usr/bin; `cut` shadowed in /usr/local/bin.
    fn installed(p: &Path) -> bool {
        let p = p.to_string_lossy();
        ["/usr/bin/wc", "/usr/bin/sort", "/usr/bin/head", "/usr/bin/cut", "/usr/local/bin/cut", "/usr/bin/jq"]
            .contains(&p.as_ref())
    }

    fn verdict(p: &HostExecPolicy, text: &str) -> Verdict {
        let (program, args) = sh(text);
        judge_with(p, &program, &args, &installed).fallback()
    }

    #[test]
    fn unset_is_full_and_deny_refuses_everything() {
        assert_eq!(verdict(&policy("{}", "main"), "rm -rf x"), Verdict::Run);
        let deny = policy(r#"{ tools: { exec: { mode: "deny" } } }"#, "main");
        let Verdict::Refuse(why) = verdict(&deny, "wc -l") else { panic!("refused") };
        assert!(why.contains("off for this agent") && why.contains("tools.exec.mode: deny"), "{why}");
    }

    #[test]
    fn an_allowlist_runs_only_stdin_filters_from_trusted_dirs() {
        let p = policy(
            r#"{ tools: { exec: { security: "allowlist", safeBins: ["wc", "sort", "head", "cut", "jq"] } } }"#,
            "main",
        );
        for fine in ["wc -l", "sort -r | head -n 5", "wc -c && sort", "head -n5"] {
            assert_eq!(verdict(&p, fine), Verdict::Run, "{fine}");
        }
        for (bad, says) in [
            ("touch x", "not in tools.exec.safeBins"),
            ("wc -l /etc/passwd", "reads stdin only"),
            ("wc -l notes.txt", "reads stdin only"),
            ("sort --files0-from=x", "reads stdin only"),
            ("wc $(cat x)", "substitution"),
            ("wc > out", "redirection"),
            ("wc|touch", "cannot read"),
            ("cut -f1", "not a trusted dir"),
            ("jq -r", "cannot be a safe bin"),
            ("wc 'unclosed", "quoting"),
            ("wc -l; touch x", "cannot read"),
            ("wc -l ; touch x", "not in tools.exec.safeBins"),
        ] {
            let Verdict::Refuse(why) = verdict(&p, bad) else { panic!("{bad} ran") };
            assert!(why.contains(says), "{bad}: {why}");
        }
    }

    #[test]
    fn asking_without_a_prompt_refuses_what_would_ask() {
        let ask = policy(r#"{ tools: { exec: { mode: "ask", safeBins: ["wc"] } } }"#, "main");
        assert_eq!(verdict(&ask, "wc -l"), Verdict::Run, "an allowlist match asks nothing");
        let Verdict::Refuse(why) = verdict(&ask, "ls") else { panic!("refused") };
        assert!(why.contains("needs approval") && why.contains("askFallback"), "{why}");
        let always = policy(r#"{ tools: { exec: { security: "full", ask: "always" } } }"#, "main");
        assert!(matches!(verdict(&always, "wc -l"), Verdict::Refuse(_)));
        let (program, args) = sh("wc -l");
        let Verdict::Ask(why) = judge_with(&always, &program, &args, &installed) else { panic!("asks") };
        assert!(why.contains("every command needs approval"), "{why}");
        assert_eq!(Decision::parse("Allow-Once"), Some(Decision::AllowOnce));
        assert_eq!(Decision::parse("always"), Some(Decision::AllowAlways));
        assert_eq!((Decision::parse("deny"), Decision::parse("maybe")), (Some(Decision::Deny), None));
    }

    #[test]
    fn the_agents_policy_replaces_the_global_one_and_mixed_keys_take_the_stricter() {
        let cfg = r#"{ tools: { exec: { mode: "deny" } },
            agents: { list: [ { id: "ops", tools: { exec: { mode: "full" } } }, { id: "other" } ] } }"#;
        assert_eq!(policy(cfg, "ops").security, Security::Full);
        assert_eq!(policy(cfg, "other").security, Security::Deny);
        let mixed = policy(r#"{ tools: { exec: { mode: "full", security: "allowlist", ask: "on-miss" } } }"#, "main");
        assert_eq!((mixed.security, mixed.ask), (Security::Allowlist, Ask::OnMiss));
    }
}
