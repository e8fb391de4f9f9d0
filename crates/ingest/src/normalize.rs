//! Text inputs are normalized before DataFusion reads them: decoded to UTF-8 (UTF-8 with or
//! without a byte order mark, or GBK/GB18030), split into physical lines, and re-written as a
//! staging CSV whose rows carry their line number, the raw line and whether the line has as
//! many fields as the header. Rejected rows can then name their line, and a short or long
//! line is a rejected row rather than a failed file.
//!
//! The file streams through: memory does not grow with its size.

use std::fmt::Write as _;

use encoding_rs::{Decoder, Encoding, GB18030, UTF_8};
use exdep_core::datafusion::prelude::SessionContext;
use exdep_core::object_store::buffered::BufWriter;
use exdep_core::object_store::{ObjectMeta, ObjectStoreExt};
use exdep_core::{Location, TextEncoding};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// The staging file's own columns, before the source's.
pub(crate) const LINE: &str = "__line";
pub(crate) const RAW: &str = "__raw";
pub(crate) const FIELDS_OK: &str = "__fields_ok";

/// A normalized input: where its staging copy is and what its header was.
pub(crate) struct Normalized {
    pub staging: Location,
    pub header: Vec<String>,
    pub encoding: &'static str,
}

/// Splits one CSV line into fields: commas separate, double quotes group, `""` escapes a
/// quote. Returns `None` when a quote is left open.
pub(crate) fn split_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

fn push_quoted(out: &mut String, field: &str) {
    out.push('"');
    for c in field.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// Decodes `file` and writes its staging copy to `staging`.
pub(crate) async fn normalize(
    ctx: &SessionContext,
    file: &Location,
    meta: &ObjectMeta,
    encoding: TextEncoding,
    staging: &Location,
) -> Result<Normalized> {
    if meta.size == 0 {
        return Err(Error::EmptyFile {
            file: file.to_string(),
        });
    }
    let store = file.store(ctx)?;
    let mut chunks = store
        .get(&meta.location)
        .await
        .map_err(exdep_core::Error::from)?
        .into_stream();
    let mut out = BufWriter::new(staging.store(ctx)?, staging.path()?);
    let mut lines = LineSplitter::new(file.to_string(), encoding);
    let mut header: Option<Vec<String>> = None;
    let mut trailing_empty_column = false;
    let mut text = String::new();
    let mut emit = |line_number: u64,
                    line: &str,
                    header: &mut Option<Vec<String>>,
                    text: &mut String|
     -> Result<()> {
        let Some(names) = header.as_ref() else {
            let mut names = split_fields(line).ok_or_else(|| Error::Header {
                file: file.to_string(),
                message: "a quote is left open".into(),
            })?;
            if names.len() > 1 && names.last().is_some_and(|n| n.trim().is_empty()) {
                names.pop();
                trailing_empty_column = true;
            }
            let names: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
            check_header(file, &names)?;
            write!(text, "{LINE},{RAW},{FIELDS_OK}").expect("writing to a string");
            for name in &names {
                text.push(',');
                push_quoted(text, name);
            }
            text.push('\n');
            *header = Some(names);
            return Ok(());
        };
        if line.trim().is_empty() {
            return Ok(());
        }
        let mut fields = split_fields(line);
        if trailing_empty_column
            && let Some(fields) = fields.as_mut()
            && fields.len() == names.len() + 1
            && fields.last().is_some_and(|f| f.trim().is_empty())
        {
            fields.pop();
        }
        let fields_ok = fields.as_ref().is_some_and(|f| f.len() == names.len());
        write!(text, "{line_number},").expect("writing to a string");
        push_quoted(text, line);
        text.push_str(if fields_ok { ",1" } else { ",0" });
        // A line of the wrong shape keeps its raw text but no fields: it is rejected whole.
        let fields = fields.filter(|_| fields_ok).unwrap_or_default();
        for field in fields
            .iter()
            .map(Some)
            .chain(std::iter::repeat(None))
            .take(names.len())
        {
            text.push(',');
            if let Some(field) = field {
                push_quoted(text, field);
            }
        }
        text.push('\n');
        Ok(())
    };
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(exdep_core::Error::from)?;
        for (number, line) in lines.push(&chunk, false)? {
            emit(number, &line, &mut header, &mut text)?;
        }
        if text.len() > 1 << 20 {
            out.write_all(text.as_bytes())
                .await
                .map_err(|e| io_error(staging, e))?;
            text.clear();
        }
    }
    for (number, line) in lines.push(&[], true)? {
        emit(number, &line, &mut header, &mut text)?;
    }
    out.write_all(text.as_bytes())
        .await
        .map_err(|e| io_error(staging, e))?;
    out.shutdown().await.map_err(|e| io_error(staging, e))?;
    let header = header.ok_or_else(|| Error::EmptyFile {
        file: file.to_string(),
    })?;
    Ok(Normalized {
        staging: staging.clone(),
        header,
        encoding: lines.encoding_name(),
    })
}

fn io_error(staging: &Location, e: std::io::Error) -> Error {
    Error::Staging {
        location: staging.to_string(),
        message: e.to_string(),
    }
}

fn check_header(file: &Location, names: &[String]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::Header {
                file: file.to_string(),
                message: format!("column {} has no name", i + 1),
            });
        }
        if !seen.insert(name.to_lowercase()) {
            return Err(Error::Header {
                file: file.to_string(),
                message: format!("column `{name}` appears twice"),
            });
        }
    }
    Ok(())
}

/// Turns byte chunks into numbered lines, decoding as it goes.
struct LineSplitter {
    file: String,
    requested: TextEncoding,
    decoder: Option<Decoder>,
    encoding: Option<&'static Encoding>,
    pending: String,
    line: u64,
    bytes_seen: u64,
}

impl LineSplitter {
    fn new(file: String, requested: TextEncoding) -> Self {
        Self {
            file,
            requested,
            decoder: None,
            encoding: None,
            pending: String::new(),
            line: 0,
            bytes_seen: 0,
        }
    }

    fn encoding_name(&self) -> &'static str {
        match self.encoding {
            Some(e) if e == GB18030 => "gb18030",
            _ => "utf-8",
        }
    }

    /// Decodes `bytes` and returns the lines completed by them (all of them when `last`).
    fn push(&mut self, bytes: &[u8], last: bool) -> Result<Vec<(u64, String)>> {
        if self.decoder.is_none() {
            let encoding = match self.requested {
                TextEncoding::Utf8 => UTF_8,
                TextEncoding::Gb18030 => GB18030,
                TextEncoding::Auto if bytes.starts_with(b"\xEF\xBB\xBF") => UTF_8,
                TextEncoding::Auto => match std::str::from_utf8(bytes) {
                    Ok(_) => UTF_8,
                    // An incomplete character at the chunk's end is still UTF-8.
                    Err(e) if e.error_len().is_none() => UTF_8,
                    Err(_) => GB18030,
                },
            };
            self.encoding = Some(encoding);
            // The decoder removes a UTF-8 byte order mark.
            self.decoder = Some(encoding.new_decoder_with_bom_removal());
        }
        let decoder = self.decoder.as_mut().expect("set above");
        let mut input = bytes;
        loop {
            let mut buffer = String::with_capacity(input.len() * 3 + 16);
            let (result, read) =
                decoder.decode_to_string_without_replacement(input, &mut buffer, last);
            self.pending.push_str(&buffer);
            input = &input[read..];
            match result {
                encoding_rs::DecoderResult::InputEmpty => break,
                encoding_rs::DecoderResult::OutputFull => continue,
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    let line = self.line + 1 + self.pending.matches('\n').count() as u64;
                    let byte = self.bytes_seen + (bytes.len() - input.len()) as u64;
                    return Err(Error::Decode {
                        file: self.file.clone(),
                        line,
                        byte,
                        encoding: self.encoding_name(),
                    });
                }
            }
        }
        self.bytes_seen += bytes.len() as u64;
        let mut lines = Vec::new();
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            self.line += 1;
            lines.push((self.line, line.trim_end_matches(['\n', '\r']).to_string()));
        }
        if last && !self.pending.is_empty() {
            self.line += 1;
            let line = std::mem::take(&mut self.pending);
            lines.push((self.line, line.trim_end_matches('\r').to_string()));
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_on_commas_outside_quotes() {
        assert_eq!(split_fields("a,\"b,c\",d").unwrap(), ["a", "b,c", "d"]);
        assert_eq!(split_fields("\"x \"\"y\"\"\",").unwrap(), ["x \"y\"", ""]);
        assert_eq!(split_fields("a,\"open"), None);
    }

    #[test]
    fn lines_keep_their_numbers_across_chunks() {
        let mut splitter = LineSplitter::new("f".into(), TextEncoding::Auto);
        let mut lines = splitter.push(b"a,b\r\n1,", false).unwrap();
        lines.extend(splitter.push(b"2\n3,4", false).unwrap());
        lines.extend(splitter.push(b"", true).unwrap());
        assert_eq!(
            lines,
            [(1, "a,b".into()), (2, "1,2".into()), (3, "3,4".into())]
        );
    }

    #[test]
    fn gbk_is_detected_and_decoded() {
        let (bytes, _, _) = GB18030.encode("数据年月,人民币\n202101,5\n");
        let mut splitter = LineSplitter::new("f".into(), TextEncoding::Auto);
        let lines = splitter.push(&bytes, true).unwrap();
        assert_eq!(lines[0].1, "数据年月,人民币");
        assert_eq!(splitter.encoding_name(), "gb18030");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let mut splitter = LineSplitter::new("f".into(), TextEncoding::Utf8);
        let error = splitter.push(b"a,b\n1,2\n\xff,3\n", true).unwrap_err();
        assert!(error.to_string().contains("line 3"), "{error}");
    }
}
