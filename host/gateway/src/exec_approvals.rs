//! Exec approval prompts (OpenClaw's exec approvals in chat): a host
//! command the policy says needs an approval waits here under a short id,
//! and a prompt goes to the chat of the session that asked — the command,
//! the agent, why, and `/approve <id> allow-once|allow-always|deny`. An
//! owner's decision (`commands.ownerAllowFrom`, checked by the command
//! path) settles it: an allowed command runs, confined as any host command
//! of its grant, and its result comes back to the session as a system
//! message, so the agent goes on from there; a denied one is dropped and
//! the session is told. `allow-always` also keeps the exact command line
//! for that agent in `<stateDir>/exec-approvals.json`: it runs without
//! asking from then on (a `mode: deny` policy still refuses it — the
//! approval settles only what would ask, and the policy in force when the
//! answer comes is applied again).
//!
//! A prompt nobody answers expires after [`PENDING_TTL`]; at most
//! [`MAX_PENDING`] wait at once (the oldest gives way).
//!
//! Must not: approve anything itself, run a command the policy refused, or
//! send a prompt or a result anywhere but the asking session's own chat.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chela_agent::approvals::{ApprovalDecisions, Approver, BoxFuture};
use chela_agent::{Inbound, Origin, Scheduled};
use chela_core::ids::ChatType;
use chela_core::policy::Decision;
use chela_core::routing::SessionTarget;
use chela_core::session_key::{derive_chat_type_from_key, SessionKey};
use chela_plugin::capability::process::{run_approved, Asked, ExecApprovals, Output, PendingExec};
use serde::{Deserialize, Serialize};

use crate::Gateway;

/// How long a prompt waits for an answer.
pub const PENDING_TTL: Duration = Duration::from_secs(30 * 60);
/// How long a request waits for its prompt's delivery before answering
/// (the rest of a slow delivery goes on in the background).
const PROMPT_WAIT: Duration = Duration::from_secs(3);
/// The most commands waiting at once.
pub const MAX_PENDING: usize = 64;
/// The most of a command's output handed back to the session.
const RESULT_MAX_CHARS: usize = 8_000;

struct Waiting {
    pending: PendingExec,
    since: Instant,
}

/// The gateway's approvals: the plugin runtime's `ExecApprovals` and the
/// agent runtime's `ApprovalDecisions`, over one table.
pub(crate) struct Approvals {
    gw: Weak<Gateway>,
    waiting: Mutex<HashMap<String, Waiting>>,
}

/// `<stateDir>/exec-approvals.json`: the command lines approved for good, per agent.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlwaysFile {
    #[serde(default)]
    version: u32,
    #[serde(default)]
    agents: std::collections::BTreeMap<String, AgentAlways>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentAlways {
    #[serde(default)]
    allowlist: Vec<AlwaysEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlwaysEntry {
    /// The exact command line (`sh -c` text).
    command: String,
    source: String,
    approved_by: String,
    added_at: i64,
}

pub(crate) fn approvals(gw: Weak<Gateway>) -> Arc<Approvals> {
    Arc::new(Approvals { gw, waiting: Mutex::default() })
}

fn approver_label(a: &Approver) -> String {
    match &a.sender_id {
        Some(id) => format!("{}:{id}", a.channel),
        None => "the local operator".into(),
    }
}

impl Approvals {
    fn gateway(&self) -> Result<Arc<Gateway>, String> {
        self.gw.upgrade().ok_or_else(|| "the gateway is stopping".to_string())
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn always_path(gw: &Gateway) -> PathBuf {
        gw.env.state_dir().join("exec-approvals.json")
    }

    /// Whether `agent` approved `command` for good.
    fn always_approved(path: &std::path::Path, agent: &str, command: &str) -> bool {
        let Ok(text) = std::fs::read_to_string(path) else { return false };
        match serde_json::from_str::<AlwaysFile>(&text) {
            Ok(file) => file.agents.get(agent).is_some_and(|a| a.allowlist.iter().any(|e| e.command == command)),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "exec approvals: unreadable; nothing is approved for good");
                false
            }
        }
    }

    /// Keeps `command` approved for good for `agent` (written 0600, replaced atomically).
    fn keep_always(path: &std::path::Path, agent: &str, command: &str, by: &str) -> std::io::Result<()> {
        let mut file: AlwaysFile = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AlwaysFile::default(),
            Err(e) => return Err(e),
        };
        file.version = 1;
        let list = &mut file.agents.entry(agent.to_string()).or_default().allowlist;
        if !list.iter().any(|e| e.command == command) {
            list.push(AlwaysEntry {
                command: command.to_string(),
                source: "allow-always".into(),
                approved_by: by.to_string(),
                added_at: chela_agent::clock::now_ms(),
            });
        }
        let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }

    /// The session's chat (its last route), where the prompt and the result go.
    fn chat_of(gw: &Gateway, session_key: &str) -> Option<(chela_agent::DeliveryContext, ChatType, SessionTarget)> {
        let key = SessionKey::parse(session_key)?;
        let cfg = gw.config();
        let chat = derive_chat_type_from_key(key.as_str()).unwrap_or(ChatType::Direct);
        let target = SessionTarget::of_key(&cfg, key, chat);
        let (delivery, chat) = crate::cron::last_route(gw, &target)?;
        Some((delivery, chat, target))
    }

    /// Tells the asking session how its command ended (a system message, a
    /// turn of its agent answering in its chat).
    async fn tell_session(gw: &Arc<Gateway>, pending: &PendingExec, text: String) {
        let Some((delivery, chat, target)) = Approvals::chat_of(gw, &pending.session_key) else {
            tracing::warn!(session = %pending.session_key, "exec approval: the session has no chat to answer in");
            return;
        };
        let snap = gw.snapshot();
        let inbound = Inbound {
            target,
            text,
            sender_id: None,
            origin: Origin {
                provider: Some("exec-approval".into()),
                label: Some("exec approval".into()),
                ..Origin::default()
            },
            extra_system: None,
            delivery: None,
            message_ref: None,
            model_override: None,
            sampling: None,
            scheduled: Some(Scheduled { fresh_session: false, light_context: false }),
            media: Vec::new(),
            live_tool_summaries: false,
            exec_tightening: Default::default(),
        };
        let outcome = crate::cron::turn_and_deliver(gw, &snap, inbound, Some((delivery, chat)), None, None).await;
        tracing::info!(session = %pending.session_key, status = outcome.status.as_str(), delivered = outcome.delivered, "exec approval: the session was told");
    }
}

/// The result of an approved command as the session reads it.
fn result_text(command: &str, by: &str, out: &Result<Output, String>) -> String {
    let clip = |bytes: &[u8]| -> String {
        let text = String::from_utf8_lossy(bytes);
        let mut s: String = text.chars().take(RESULT_MAX_CHARS).collect();
        if text.chars().count() > RESULT_MAX_CHARS {
            s.push_str("\n[output cut]");
        }
        s
    };
    match out {
        Ok(o) => format!(
            "System: {by} approved the command `{command}`, and it ran. Exit code: {}{}.\nstdout:\n{}\nstderr:\n{}",
            o.exit_code.map_or("none (killed)".to_string(), |c| c.to_string()),
            if o.timed_out { ", timed out" } else { "" },
            clip(&o.stdout),
            clip(&o.stderr)
        ),
        Err(e) => format!("System: {by} approved the command `{command}`, but it could not run: {e}"),
    }
}

impl ExecApprovals for Approvals {
    fn request(&self, pending: PendingExec) -> BoxFuture<'_, Result<Asked, String>> {
        Box::pin(async move {
            let gw = self.gateway()?;
            let command = pending.command_text();
            let path = Approvals::always_path(&gw);
            let (agent, text) = (pending.agent.clone(), command.clone());
            if tokio::task::spawn_blocking(move || Approvals::always_approved(&path, &agent, &text))
                .await
                .unwrap_or(false)
            {
                tracing::info!(agent = %pending.agent, command = %command, "exec: approved for good (allow-always)");
                return Ok(Asked::Approved);
            }
            let (delivery, chat, target) = Approvals::chat_of(&gw, &pending.session_key)
                .ok_or("this session has no chat to ask in (an approval prompt needs one)")?;
            let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
            let prompt = format!(
                "🔐 Approval needed: agent `{}` wants to run\n{command}\n({}).\nReply /approve {id} allow-once, \
                 /approve {id} allow-always or /approve {id} deny (owners only; expires in {} min).",
                pending.agent,
                pending.reason,
                PENDING_TTL.as_secs() / 60
            );
            {
                let mut waiting = self.waiting();
                waiting.retain(|_, w| w.since.elapsed() < PENDING_TTL);
                while waiting.len() >= MAX_PENDING {
                    let Some(oldest) = waiting.iter().min_by_key(|(_, w)| w.since).map(|(k, _)| k.clone()) else {
                        break;
                    };
                    waiting.remove(&oldest);
                }
                waiting.insert(id.clone(), Waiting { pending: pending.clone(), since: Instant::now() });
            }
            let announcement = chela_agent::Announcement {
                session_key: target.key,
                delivery: Some(delivery),
                chat_type: chat,
                text: prompt,
            };
            // Delivery may retry on a slow platform, and the asking plugin call has a deadline:
            // wait a little for it, and let a slow one finish in the background.
            let gw2 = gw.clone();
            let (approval, agent) = (id.clone(), pending.agent.clone());
            let delivering = tokio::spawn(async move {
                let delivered = gw2.deliver_announcement(announcement).await;
                if !delivered {
                    tracing::error!(%approval, %agent, "exec: the approval prompt could not be delivered; it expires unanswered");
                }
                delivered
            });
            if let Ok(Ok(false)) = tokio::time::timeout(PROMPT_WAIT, delivering).await {
                self.waiting().remove(&id);
                return Err("the approval prompt could not be delivered to this chat".into());
            }
            tracing::info!(agent = %pending.agent, session = %pending.session_key, approval = %id, "exec: approval asked for");
            Ok(Asked::Pending(id))
        })
    }
}

impl ApprovalDecisions for Approvals {
    fn decide<'a>(
        &'a self,
        approver: &'a Approver,
        id: &'a str,
        decision: Decision,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let gw = self.gateway()?;
            let waiting = {
                let mut table = self.waiting();
                table.retain(|_, w| w.since.elapsed() < PENDING_TTL);
                table.remove(id)
            };
            let Some(Waiting { pending, .. }) = waiting else {
                return Err(format!("No command waits for approval `{id}` (it was answered, or it expired)."));
            };
            let by = approver_label(approver);
            let command = pending.command_text();
            tracing::info!(approval = %id, agent = %pending.agent, decision = ?decision, by = %by, "exec approval answered");
            if decision == Decision::Deny {
                let text = format!("System: {by} denied the command `{command}`; it was not run.");
                let gw2 = gw.clone();
                tokio::spawn(async move { Approvals::tell_session(&gw2, &pending, text).await });
                return Ok(format!("Denied: `{command}` will not run."));
            }
            // The policy in force now still holds: a command the config turned off meanwhile does not run.
            let policy = chela_core::policy::host_exec_policy(&gw.config(), &pending.agent);
            let verdict = chela_core::policy::judge(&policy, &pending.command.program, &pending.command.args);
            if let chela_core::policy::Verdict::Refuse(why) = verdict {
                let text = format!("System: the command `{command}` was approved, but it is refused now: {why}.");
                let gw2 = gw.clone();
                tokio::spawn(async move { Approvals::tell_session(&gw2, &pending, text).await });
                return Ok(format!("Not run: {why}."));
            }
            if decision == Decision::AllowAlways {
                let (path, agent, text, who) =
                    (Approvals::always_path(&gw), pending.agent.clone(), command.clone(), by.clone());
                let kept =
                    tokio::task::spawn_blocking(move || Approvals::keep_always(&path, &agent, &text, &who)).await;
                if let Ok(Err(e)) | Err(e) = kept.map_err(std::io::Error::other) {
                    tracing::error!(error = %e, "exec approvals: cannot keep an allow-always decision");
                    return Err(format!("The decision could not be kept ({e}); nothing was run."));
                }
            }
            let (gw2, agent) = (gw.clone(), pending.agent.clone());
            tokio::spawn(async move {
                let out = run_approved(&pending.grant, pending.command.clone()).await;
                let text = result_text(&pending.command_text(), &by, &out);
                Approvals::tell_session(&gw2, &pending, text).await;
            });
            Ok(match decision {
                Decision::AllowAlways => {
                    format!("Approved for good: running `{command}` now; agent `{agent}` runs it without asking from now on.")
                }
                _ => format!("Approved once: running `{command}` now."),
            })
        })
    }
}
