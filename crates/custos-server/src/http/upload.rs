//! Forms that carry a file: the letter of attorney an agent uploads on the
//! public agent form and staff attach when they log an agent's request.
//!
//! The body is `multipart/form-data`, read part by part with bounds on
//! everything a client controls: the body as a whole (the route's body
//! limit: the largest letter plus [`TEXT_ROOM`]), the number of parts, the
//! names (only the form's own, each once), a text field's length and the
//! file's size (counted while it streams in, so an oversized file is
//! refused without being held). The file's media type is what its bytes
//! are, not what the browser says: a PDF, PNG or JPEG is known by its
//! signature, text must be UTF-8 without control bytes, and a declared type
//! that disagrees with the bytes is refused.

use std::collections::BTreeMap;

use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::StatusCode;

/// Room in the body for the text fields and the multipart framing, on top
/// of the file.
pub(crate) const TEXT_ROOM: usize = 64 * 1024;
/// Longest text field, in bytes.
const MAX_TEXT: usize = 20_000;
/// Most parts in one form.
const MAX_PARTS: usize = 24;

/// A form read: its text fields and its file, if one was chosen.
#[derive(Default)]
pub(crate) struct Upload {
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) file: Option<UploadedFile>,
}

impl Upload {
    /// A text field, or "" when the form did not send it.
    pub(crate) fn text(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
}

/// The uploaded file and the media type its bytes show.
pub(crate) struct UploadedFile {
    pub(crate) bytes: Vec<u8>,
    pub(crate) media_type: &'static str,
}

/// Why a form was refused: the status and a sentence for the page.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

fn refused(status: StatusCode, message: impl Into<String>) -> Refused {
    Refused { status, message: message.into() }
}

/// Reads a multipart form whose text fields are `fields` and whose file is
/// `file_field`, holding a file of at most `max_file` bytes. With `csrf`
/// (a signed-in form), the first part must be the field `csrf` holding that
/// token: a forged form is refused before anything else of it is read.
pub(crate) async fn read(
    multipart: Result<Multipart, MultipartRejection>,
    csrf: Option<&str>,
    fields: &[&str],
    file_field: &str,
    max_file: usize,
) -> Result<Upload, Refused> {
    let mut multipart =
        multipart.map_err(|_| refused(StatusCode::BAD_REQUEST, "The form was not sent as a form with a file."))?;
    let mut out = Upload::default();
    let mut parts = 0;
    let mut file_seen = false;
    loop {
        let part = multipart.next_field().await.map_err(too_large_or_bad)?;
        let Some(mut part) = part else { break };
        parts += 1;
        if parts > MAX_PARTS {
            return Err(refused(StatusCode::BAD_REQUEST, "The form has too many parts."));
        }
        let name = part.name().unwrap_or("").to_owned();
        if let Some(expected) = csrf
            && parts == 1
        {
            let token = if name == "csrf" { part.text().await.map_err(too_large_or_bad)? } else { String::new() };
            if token.len() > 128 || !super::pages::same_token(expected, &token) {
                return Err(refused(StatusCode::FORBIDDEN, "The form has expired: reload the page."));
            }
            out.fields.insert(name, token);
            continue;
        }
        if name == file_field {
            if file_seen {
                return Err(refused(StatusCode::BAD_REQUEST, "The form sent two files."));
            }
            file_seen = true;
            let declared = part.content_type().map(str::to_owned);
            let mut bytes = Vec::new();
            while let Some(chunk) = part.chunk().await.map_err(too_large_or_bad)? {
                if bytes.len() + chunk.len() > max_file {
                    return Err(refused(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("The file is larger than {} MiB.", max_file / (1024 * 1024)),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            // A file input left empty still sends its part, with no bytes.
            if !bytes.is_empty() {
                let media_type = media_type(&bytes, declared.as_deref())?;
                out.file = Some(UploadedFile { bytes, media_type });
            }
            continue;
        }
        if !fields.contains(&name.as_str()) {
            return Err(refused(StatusCode::BAD_REQUEST, "The form has a field it does not ask for."));
        }
        if out.fields.contains_key(&name) {
            return Err(refused(StatusCode::BAD_REQUEST, "The form sent a field twice."));
        }
        let mut value = Vec::new();
        while let Some(chunk) = part.chunk().await.map_err(too_large_or_bad)? {
            if value.len() + chunk.len() > MAX_TEXT {
                return Err(refused(StatusCode::UNPROCESSABLE_ENTITY, "A field of the form is too long."));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value)
            .map_err(|_| refused(StatusCode::BAD_REQUEST, "A field of the form is not text."))?;
        out.fields.insert(name, value);
    }
    Ok(out)
}

fn too_large_or_bad(e: axum::extract::multipart::MultipartError) -> Refused {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        refused(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")
    } else {
        refused(StatusCode::BAD_REQUEST, "The form could not be read.")
    }
}

/// The media types a letter may have, with how each is recognised.
const SIGNATURES: &[(&str, &[u8])] =
    &[("application/pdf", b"%PDF-"), ("image/png", b"\x89PNG\r\n\x1a\n"), ("image/jpeg", b"\xff\xd8\xff")];

/// Characters a text letter may not hold: controls other than tab, line
/// feed and carriage return, and the bidirectional overrides and isolates
/// that make text read differently from how it is stored.
fn unfit(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// What `bytes` are: a PDF, PNG or JPEG by signature, else text when they
/// are UTF-8 with some visible character and nothing [`unfit`]. A declared
/// type of one of these that disagrees is refused; a generic one
/// (`application/octet-stream`, none) is not held against it.
pub(crate) fn media_type(bytes: &[u8], declared: Option<&str>) -> Result<&'static str, Refused> {
    let sniffed = SIGNATURES.iter().find(|(_, sig)| bytes.starts_with(sig)).map(|(t, _)| *t).or_else(|| {
        let text = std::str::from_utf8(bytes).ok()?;
        (!text.trim().is_empty() && !text.chars().any(unfit)).then_some("text/plain")
    });
    let Some(sniffed) = sniffed else {
        return Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The letter must be a PDF, PNG or JPEG file, or plain text.",
        ));
    };
    let declared = declared.map(|d| d.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match declared.as_deref() {
        Some(d) if d == sniffed => Ok(sniffed),
        Some("application/pdf" | "image/png" | "image/jpeg" | "text/plain") => Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("The file says it is {} but its contents are {sniffed}.", declared.as_deref().unwrap_or("")),
        )),
        _ => Ok(sniffed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_what_its_bytes_are() {
        assert_eq!(media_type(b"%PDF-1.7\n...", Some("application/pdf")), Ok("application/pdf"));
        assert_eq!(media_type(b"\x89PNG\r\n\x1a\n....", Some("image/png")), Ok("image/png"));
        assert_eq!(media_type(b"\xff\xd8\xff\xe0....", None), Ok("image/jpeg"));
        assert_eq!(
            media_type("I, Kim, authorise\r\n\tyou.".as_bytes(), Some("text/plain; charset=utf-8")),
            Ok("text/plain")
        );
        // A generic declared type does not count against the bytes.
        assert_eq!(media_type(b"%PDF-1.4", Some("application/octet-stream")), Ok("application/pdf"));
    }

    #[test]
    fn a_file_whose_bytes_disagree_or_are_unknown_is_refused() {
        let e = media_type(b"MZ\x90\x00\x03", Some("application/pdf")).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let e = media_type(b"%PDF-1.7", Some("image/png")).unwrap_err();
        assert!(e.message.contains("image/png") && e.message.contains("application/pdf"), "{}", e.message);
        assert!(media_type(b"plain\x00with a NUL", Some("text/plain")).is_err());
        assert!(media_type(b"\x1b[31mred\x1b[0m", None).is_err(), "terminal escapes are not a letter");
        assert!(media_type(&[0xc3, 0x28], None).is_err(), "not UTF-8");
        assert!(media_type(b" \r\n\t ", Some("text/plain")).is_err(), "only white space");
        assert!(media_type("I authorise \u{202e}tnega".as_bytes(), None).is_err(), "a bidirectional override");
    }
}
