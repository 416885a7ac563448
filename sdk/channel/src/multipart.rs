//! `multipart/form-data` request bodies (RFC 7578), for the platforms'
//! file uploads: text fields, then one file part.
//!
//! Must not: read files itself (the host hands the bytes over).

/// A body and its `content-type` (with the boundary).
pub struct Form {
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Quotes a field or file name for a `Content-Disposition` header.
fn quoted(name: &str) -> String {
    name.chars().map(|c| if c == '"' || c == '\\' || c.is_control() { '_' } else { c }).collect()
}

/// `fields` as text parts, then `file` (field name, file name, MIME type, bytes).
pub fn form(fields: &[(&str, String)], file: (&str, &str, &str, &[u8])) -> Form {
    // A boundary that occurs in none of the parts.
    let mut boundary = String::from("chela-form-7f3a9c");
    while fields.iter().any(|(_, v)| v.contains(&boundary))
        || file.3.windows(boundary.len()).any(|w| w == boundary.as_bytes())
    {
        boundary.push('x');
    }
    let mut body = Vec::with_capacity(file.3.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n", quoted(name))
                .as_bytes(),
        );
    }
    let (field, file_name, mime, bytes) = file;
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {mime}\r\n\r\n",
            quoted(field),
            quoted(file_name)
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Form { content_type: format!("multipart/form-data; boundary={boundary}"), body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_delimited_and_names_quoted() {
        let f = form(&[("chat_id", "42".into())], ("document", "a\"b.txt", "text/plain", b"hi"));
        let text = String::from_utf8(f.body).unwrap();
        assert_eq!(f.content_type, "multipart/form-data; boundary=chela-form-7f3a9c");
        assert!(
            text.starts_with("--chela-form-7f3a9c\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n")
        );
        assert!(text.contains("name=\"document\"; filename=\"a_b.txt\"\r\nContent-Type: text/plain\r\n\r\nhi\r\n"));
        assert!(text.ends_with("--chela-form-7f3a9c--\r\n"));
        let tricky = form(&[], ("f", "x", "a/b", b"--chela-form-7f3a9c"));
        assert!(tricky.content_type.ends_with("chela-form-7f3a9cx"));
    }
}
