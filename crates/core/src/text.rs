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
