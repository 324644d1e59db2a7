//! `--autoindex`: an HTML listing of a directory without `index.html`.
//! Names are HTML-escaped in the text and percent-encoded in the links.

use edgeshard_routing::percent::decode_lossy;

/// Renders the listing of the directory at `url_path` (as requested, ending
/// in `/`). Directories come first and end in `/`; dotfiles are left out
/// unless `dotfiles`.
pub fn render(url_path: &str, mut names: Vec<(Vec<u8>, bool)>, dotfiles: bool) -> String {
    names.retain(|(n, _)| dotfiles || n.first() != Some(&b'.'));
    names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let title = escape_html(&decode_lossy(url_path));
    let mut out = String::with_capacity(256 + names.len() * 96);
    out.push_str("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    out.push_str(&title);
    out.push_str("</title></head>\n<body><h1>Index of ");
    out.push_str(&title);
    out.push_str("</h1>\n<ul>\n");
    if url_path != "/" {
        out.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        out.push_str("<li><a href=\"");
        out.push_str(&percent_encode(&name));
        out.push_str(slash);
        out.push_str("\">");
        out.push_str(&escape_html(&String::from_utf8_lossy(&name)));
        out.push_str(slash);
        out.push_str("</a></li>\n");
    }
    out.push_str("</ul></body></html>\n");
    out
}

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a file name for use as a relative link (a `:` in the
/// first segment would otherwise read as a scheme).
fn percent_encode(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@".contains(&b) {
            // `&` and `'` are legal in a URL; escape_html-free because the
            // attribute is double-quoted and these never close it.
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_encoded() {
        let names = vec![
            (b"<script>alert(1)</script>.txt".to_vec(), false),
            (b"a dir".to_vec(), true),
            (b".hidden".to_vec(), false),
            (b"x:y\"z".to_vec(), false),
        ];
        let html = render("/files/", names, false);
        assert!(html.contains("Index of /files/"));
        assert!(html.contains("<a href=\"../\">"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.txt"));
        assert!(html.contains("href=\"%3Cscript%3Ealert(1)%3C%2Fscript%3E.txt\""));
        assert!(html.contains("<a href=\"a%20dir/\">a dir/</a>"));
        assert!(html.contains("href=\"x%3Ay%22z\">x:y&quot;z</a>"));
        assert!(!html.contains("hidden"));
        // Directories first.
        assert!(html.find("a dir").unwrap() < html.find("x:y").unwrap());
    }
}
