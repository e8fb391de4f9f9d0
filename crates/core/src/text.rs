//! Text helpers shared by the readers of code tables and inputs.

/// Decodes UTF-8 text, or says on which line (1-based) the first bad byte is.
pub fn utf8_text(bytes: &[u8]) -> Result<&str, usize> {
    std::str::from_utf8(bytes).map_err(|e| {
        bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    })
}

/// An error and its causes on one line, each cause once: exdep's errors carry their own
/// context only, but some libraries' errors (DataFusion's `External`, object_store's) repeat
/// their cause's text in their own message.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut cause = Some(error);
    while let Some(error) = cause {
        let text = error.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = error.source();
    }
    line.replace('\n', " ")
}
