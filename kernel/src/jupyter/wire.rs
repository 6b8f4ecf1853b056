//! Jupyter messages (messaging spec 5.3): the envelope, signing, and typed contents.
//!
//! Our own serde structs rather than `jupyter-protocol`: in its 2.x releases `execute_reply`
//! serialises `user_expressions: null` and display messages `transient: null`, which real
//! clients reject; the handful of messages a kernel sends fit in this one module.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use sha2::Sha256;

pub const PROTOCOL_VERSION: &str = "5.3";
const DELIMITER: &[u8] = b"<IDS|MSG>";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub msg_id: String,
    pub session: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub date: String,
    pub msg_type: String,
    #[serde(default = "default_version")]
    pub version: String,
}

fn default_version() -> String {
    PROTOCOL_VERSION.to_owned()
}

/// One message with its routing identities (empty on iopub, where the topic stands first).
#[derive(Clone, Debug)]
pub struct Message {
    pub identities: Vec<Bytes>,
    pub header: Header,
    /// The request's header, or `{}`.
    pub parent_header: Json,
    pub metadata: Json,
    pub content: Json,
}

impl Message {
    pub fn msg_type(&self) -> &str {
        &self.header.msg_type
    }

    /// A message answering or caused by `parent`, in the parent's session.
    pub fn child(parent: &Message, session: &str, msg_type: &str, content: impl Serialize) -> Message {
        Message {
            identities: parent.identities.clone(),
            header: new_header(session, msg_type),
            parent_header: serde_json::to_value(&parent.header).unwrap_or_else(|_| json!({})),
            metadata: json!({}),
            content: serde_json::to_value(content).unwrap_or_else(|_| json!({})),
        }
    }

    /// A message with no parent (the `starting` status).
    pub fn orphan(session: &str, msg_type: &str, content: impl Serialize) -> Message {
        Message {
            identities: Vec::new(),
            header: new_header(session, msg_type),
            parent_header: json!({}),
            metadata: json!({}),
            content: serde_json::to_value(content).unwrap_or_else(|_| json!({})),
        }
    }
}

pub fn new_header(session: &str, msg_type: &str) -> Header {
    Header {
        msg_id: uuid::Uuid::new_v4().to_string(),
        session: session.to_owned(),
        username: "wand".to_owned(),
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        msg_type: msg_type.to_owned(),
        version: PROTOCOL_VERSION.to_owned(),
    }
}

/// HMAC-SHA256 over header, parent header, metadata and content; no key means no signing.
#[derive(Clone)]
pub struct Signer {
    key: Option<Vec<u8>>,
}

impl Signer {
    pub fn new(scheme: &str, key: &str) -> anyhow::Result<Signer> {
        if key.is_empty() {
            return Ok(Signer { key: None });
        }
        if scheme != "hmac-sha256" {
            anyhow::bail!("unsupported signature scheme `{scheme}` (Wand supports hmac-sha256)");
        }
        Ok(Signer { key: Some(key.as_bytes().to_vec()) })
    }

    fn mac(&self, parts: &[&[u8]]) -> Option<Hmac<Sha256>> {
        let key = self.key.as_ref()?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
        }
        Some(mac)
    }

    pub fn sign(&self, parts: &[&[u8]]) -> String {
        self.mac(parts).map(|mac| hex::encode(mac.finalize().into_bytes())).unwrap_or_default()
    }

    /// Constant-time check of a hex signature.
    pub fn verify(&self, parts: &[&[u8]], signature: &[u8]) -> bool {
        let Some(mac) = self.mac(parts) else { return true };
        let Ok(signature) = hex::decode(signature) else { return false };
        mac.verify_slice(&signature).is_ok()
    }
}

/// Why a multipart message was dropped.
#[derive(Debug)]
pub enum DecodeError {
    NoDelimiter,
    TooShort,
    BadSignature,
    BadJson(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NoDelimiter => f.write_str("no <IDS|MSG> delimiter"),
            DecodeError::TooShort => f.write_str("fewer than 5 frames after the delimiter"),
            DecodeError::BadSignature => f.write_str("invalid HMAC signature"),
            DecodeError::BadJson(err) => write!(f, "invalid JSON: {err}"),
        }
    }
}

pub fn decode(frames: Vec<Bytes>, signer: &Signer) -> Result<Message, DecodeError> {
    let split = frames.iter().position(|frame| frame.as_ref() == DELIMITER).ok_or(DecodeError::NoDelimiter)?;
    let identities = frames[..split].to_vec();
    let rest = &frames[split + 1..];
    if rest.len() < 5 {
        return Err(DecodeError::TooShort);
    }
    let parts: [&[u8]; 4] = [&rest[1], &rest[2], &rest[3], &rest[4]];
    if !signer.verify(&parts, &rest[0]) {
        return Err(DecodeError::BadSignature);
    }
    let bad = |err: serde_json::Error| DecodeError::BadJson(err.to_string());
    let header: Header = serde_json::from_slice(&rest[1]).map_err(bad)?;
    let parent_header: Json = serde_json::from_slice(&rest[2]).map_err(bad)?;
    let metadata: Json = serde_json::from_slice(&rest[3]).map_err(bad)?;
    let content: Json = serde_json::from_slice(&rest[4]).map_err(bad)?;
    Ok(Message { identities, header, parent_header, metadata, content })
}

pub fn encode(message: &Message, signer: &Signer) -> Vec<Bytes> {
    let header = serde_json::to_vec(&message.header).unwrap_or_default();
    let parent = serde_json::to_vec(&message.parent_header).unwrap_or_default();
    let metadata = serde_json::to_vec(&message.metadata).unwrap_or_default();
    let content = serde_json::to_vec(&message.content).unwrap_or_default();
    let signature = signer.sign(&[&header, &parent, &metadata, &content]);
    let mut frames = message.identities.clone();
    frames.push(Bytes::from_static(DELIMITER));
    frames.push(Bytes::from(signature));
    frames.extend([header, parent, metadata, content].map(Bytes::from));
    frames
}

// ---- contents -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct ExecuteRequest {
    pub code: String,
    #[serde(default)]
    pub silent: bool,
    #[serde(default = "yes")]
    pub store_history: bool,
    #[serde(default)]
    pub allow_stdin: bool,
    /// Evaluated in the scratch namespace after a successful cell.
    #[serde(default)]
    pub user_expressions: serde_json::Map<String, Json>,
    /// The spec's default is true.
    #[serde(default = "yes")]
    pub stop_on_error: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct CodeAtCursor {
    pub code: String,
    #[serde(default)]
    pub cursor_pos: Option<usize>,
    #[serde(default)]
    pub detail_level: u8,
}

#[derive(Debug, Deserialize)]
pub struct IsCompleteRequest {
    pub code: String,
}

#[derive(Debug, Deserialize)]
pub struct ShutdownRequest {
    #[serde(default)]
    pub restart: bool,
}

#[derive(Debug, Deserialize)]
pub struct InputReply {
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub struct CommOpen {
    pub comm_id: String,
}

#[derive(Serialize)]
pub struct Status<'a> {
    pub execution_state: &'a str,
}

#[derive(Serialize)]
pub struct ExecuteInput<'a> {
    pub code: &'a str,
    pub execution_count: u32,
}

#[derive(Serialize)]
pub struct Stream<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// A MIME bundle: `{"text/plain": ..., "text/html": ...}`.
pub type MimeBundle = serde_json::Map<String, Json>;

#[derive(Serialize)]
pub struct Transient {
    pub display_id: String,
}

/// `display_data` and `update_display_data`. `transient` is left out when absent (some
/// clients reject `transient: null`).
#[derive(Serialize)]
pub struct DisplayData {
    pub data: MimeBundle,
    pub metadata: Json,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient: Option<Transient>,
}

#[derive(Serialize)]
pub struct ExecuteResult {
    pub execution_count: u32,
    pub data: MimeBundle,
    pub metadata: Json,
}

#[derive(Clone, Debug, Serialize)]
pub struct ErrorContent {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

#[derive(Serialize)]
pub struct InputRequest<'a> {
    pub prompt: &'a str,
    pub password: bool,
}

pub fn execute_reply_ok(execution_count: u32, user_expressions: Json, payload: Vec<Json>) -> Json {
    json!({"status": "ok", "execution_count": execution_count, "payload": payload, "user_expressions": user_expressions})
}

pub fn execute_reply_error(execution_count: u32, error: &ErrorContent) -> Json {
    json!({"status": "error", "execution_count": execution_count, "ename": error.ename, "evalue": error.evalue,
           "traceback": error.traceback, "payload": [], "user_expressions": {}})
}

pub fn kernel_info_reply() -> Json {
    json!({
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "wand",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": {
            "name": "wand",
            "version": env!("CARGO_PKG_VERSION"),
            "mimetype": "text/x-python",
            "file_extension": ".py",
            "pygments_lexer": "python3",
            "codemirror_mode": {"name": "python", "version": 3},
            "nbconvert_exporter": "python",
        },
        "banner": "Wand: Mage pipelines as notebooks. Type %help for the magics.",
        "help_links": [],
        "debugger": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_signatures_are_refused() {
        let signer = Signer::new("hmac-sha256", "secret").unwrap();
        let mut message = Message::orphan("s", "kernel_info_request", json!({}));
        message.identities = vec![Bytes::from_static(b"client")];
        let mut frames = encode(&message, &signer);
        let back = decode(frames.clone(), &signer).unwrap();
        assert_eq!(back.header.msg_type, "kernel_info_request");
        assert_eq!(back.identities, message.identities);
        frames[2] = Bytes::from("0".repeat(64));
        assert!(matches!(decode(frames.clone(), &signer), Err(DecodeError::BadSignature)));
        frames[2] = Bytes::from_static(b"not hex");
        assert!(matches!(decode(frames, &signer), Err(DecodeError::BadSignature)));
        assert!(matches!(decode(vec![Bytes::from_static(b"x")], &signer), Err(DecodeError::NoDelimiter)));
    }

    #[test]
    fn display_data_omits_missing_transient() {
        let text = serde_json::to_string(&DisplayData { data: MimeBundle::new(), metadata: json!({}), transient: None }).unwrap();
        assert!(!text.contains("transient"), "{text}");
        assert_eq!(execute_reply_ok(3, json!({}), Vec::new())["user_expressions"], json!({}));
    }
}
