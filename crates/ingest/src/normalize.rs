//! Text inputs are normalized before DataFusion reads them: decoded to UTF-8 (UTF-8 with or
//! without a byte order mark, or GBK/GB18030), split into records, and re-written as a
//! staging CSV whose rows carry their line number, the raw record and whether the record
//! has as many fields as the header. Rejected rows can then name their line, and a short or
//! long record is a rejected row rather than a failed file.
//!
//! A record ends at LF, CRLF or a lone CR (old Mac files) outside double quotes: a quoted
//! field may hold line breaks (each becomes a space). A record is at most
//! [`MAX_RECORD_BYTES`]: past that, an open quote no longer joins lines, and a single line
//! that long is rejected (`line_too_long`) without being held. The file streams through:
//! memory does not grow with its size.

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

/// The longest record kept, in bytes of UTF-8: no export record is near it, and a file
/// without line breaks (or a compressed file named `.csv`) is rejected in pieces of this
/// size instead of being held whole.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 20;

/// What `__fields_ok` holds for a record cut at [`MAX_RECORD_BYTES`].
pub(crate) const TOO_LONG: &str = "L";

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
    let mut emit =
        |record: Record, header: &mut Option<Vec<String>>, text: &mut String| -> Result<()> {
            let Record {
                line: line_number,
                text: line,
                too_long,
            } = record;
            let line = line.as_str();
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
            if line.trim().is_empty() && !too_long {
                return Ok(());
            }
            if too_long {
                write!(text, "{line_number},").expect("writing to a string");
                push_quoted(text, line);
                write!(text, ",{TOO_LONG}").expect("writing to a string");
                text.extend(std::iter::repeat_n(',', names.len()));
                text.push('\n');
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
        for record in lines.push(&chunk, false)? {
            emit(record, &mut header, &mut text)?;
        }
        if text.len() > 1 << 20 {
            out.write_all(text.as_bytes())
                .await
                .map_err(|e| io_error(staging, e))?;
            text.clear();
        }
    }
    for record in lines.push(&[], true)? {
        emit(record, &mut header, &mut text)?;
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

/// One record of a text file: the line it starts on, its text (line breaks inside quotes
/// turned into spaces), and whether it was cut at [`MAX_RECORD_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    line: u64,
    text: String,
    too_long: bool,
}

/// Where the first record of `text` ends: the byte its line break starts at and the byte
/// after it, or `None` when `text` holds no complete record yet. With `quotes`, a line break
/// inside double quotes does not end it. A CR at the very end may be half of a CRLF, so it
/// ends a record only when `last`.
fn record_end(text: &str, quotes: bool, last: bool) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut quoted = false;
    for (i, &byte) in bytes.iter().enumerate() {
        match byte {
            b'"' if quotes => quoted = !quoted,
            b'\n' if !quoted => return Some((i, i + 1)),
            b'\r' if !quoted => {
                return match bytes.get(i + 1) {
                    Some(b'\n') => Some((i, i + 2)),
                    Some(_) => Some((i, i + 1)),
                    None if last => Some((i, i + 1)),
                    None => None,
                };
            }
            _ => {}
        }
    }
    None
}

/// A record's text with each line break inside its quotes (LF, CRLF or a lone CR) as one
/// space, so the staging copy holds one record per line.
fn breaks_as_spaces(text: &str) -> String {
    text.replace("\r\n", " ").replace(['\r', '\n'], " ")
}

/// The number of line breaks (LF, CRLF or a lone CR) in `text`.
fn line_breaks(text: &str) -> u64 {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count() as u64
}

/// Turns byte chunks into numbered records, decoding as it goes.
struct LineSplitter {
    file: String,
    requested: TextEncoding,
    decoder: Option<Decoder>,
    encoding: Option<&'static Encoding>,
    pending: String,
    line: u64,
    bytes_seen: u64,
    /// Inside a line already rejected as too long: the rest of it is dropped.
    skipping: bool,
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
            skipping: false,
        }
    }

    fn encoding_name(&self) -> &'static str {
        match self.encoding {
            Some(e) if e == GB18030 => "gb18030",
            _ => "utf-8",
        }
    }

    /// Decodes `bytes` and returns the records completed by them (all of them when `last`).
    fn push(&mut self, bytes: &[u8], last: bool) -> Result<Vec<Record>> {
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
        Ok(self.take_records(last))
    }

    /// Takes the complete records out of the decoded text.
    fn take_records(&mut self, last: bool) -> Vec<Record> {
        let mut records = Vec::new();
        loop {
            if self.skipping {
                // The rest of a line too long to keep: dropped up to its line break.
                let Some((_, next)) = record_end(&self.pending, false, last) else {
                    self.pending.clear();
                    break;
                };
                self.pending.drain(..next);
                self.line += 1;
                self.skipping = false;
                continue;
            }
            // Quotes join lines only within a record's length limit.
            let quoted = self.pending.len() <= MAX_RECORD_BYTES;
            // Past the limit, or at the end of the file, an open quote ends at its line.
            let end = record_end(&self.pending, quoted, last).or_else(|| {
                (!quoted || last)
                    .then(|| record_end(&self.pending, false, last))
                    .flatten()
            });
            match end {
                Some((end, next)) if end <= MAX_RECORD_BYTES => {
                    let text: String = self.pending.drain(..next).collect();
                    let record = &text[..end];
                    records.push(Record {
                        line: self.line + 1,
                        text: breaks_as_spaces(record),
                        too_long: false,
                    });
                    self.line += line_breaks(record) + 1;
                }
                _ if self.pending.len() > MAX_RECORD_BYTES => {
                    // A line longer than any record: rejected, with its start as raw text.
                    let mut cut = 256;
                    while !self.pending.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    records.push(Record {
                        line: self.line + 1,
                        text: self.pending[..cut].to_string(),
                        too_long: true,
                    });
                    self.pending.clear();
                    self.skipping = true;
                }
                _ => break,
            }
        }
        if last && !self.pending.is_empty() {
            let text = std::mem::take(&mut self.pending);
            records.push(Record {
                line: self.line + 1,
                text: breaks_as_spaces(&text),
                too_long: false,
            });
            self.line += line_breaks(&text) + 1;
        }
        records
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

    fn records(chunks: &[&[u8]]) -> Vec<(u64, String, bool)> {
        let mut splitter = LineSplitter::new("f".into(), TextEncoding::Auto);
        let mut records = Vec::new();
        for chunk in chunks {
            records.extend(splitter.push(chunk, false).unwrap());
        }
        records.extend(splitter.push(b"", true).unwrap());
        records
            .into_iter()
            .map(|r| (r.line, r.text, r.too_long))
            .collect()
    }

    fn plain(records: &[(u64, &str)]) -> Vec<(u64, String, bool)> {
        records
            .iter()
            .map(|(line, text)| (*line, text.to_string(), false))
            .collect()
    }

    #[test]
    fn lines_keep_their_numbers_across_chunks() {
        assert_eq!(
            records(&[b"a,b\r\n1,", b"2\n3,4"]),
            plain(&[(1, "a,b"), (2, "1,2"), (3, "3,4")])
        );
    }

    #[test]
    fn cr_lf_and_crlf_all_end_records_even_split_across_chunks() {
        assert_eq!(
            records(&[b"a,b\r1,2\r", b"\n3,4\n5,6\r", b"7,8\r"]),
            plain(&[(1, "a,b"), (2, "1,2"), (3, "3,4"), (4, "5,6"), (5, "7,8")])
        );
    }

    #[test]
    fn a_quoted_field_may_hold_line_breaks() {
        assert_eq!(
            records(&[b"a,b\n\"x\ny\",2\n3,\"p\r\nq\"\n4,5\n"]),
            plain(&[(1, "a,b"), (2, "\"x y\",2"), (4, "3,\"p q\""), (6, "4,5")])
        );
    }

    #[test]
    fn an_open_quote_at_the_end_ends_at_its_line() {
        assert_eq!(
            records(&[b"a,b\n\"open,1\n2,3\n"]),
            plain(&[(1, "a,b"), (2, "\"open,1"), (3, "2,3")])
        );
    }

    #[test]
    fn a_line_longer_than_a_record_is_cut_and_the_rest_dropped() {
        let long = vec![b'x'; MAX_RECORD_BYTES + 10];
        let found = records(&[b"a,b\n", &long, b"tail\n1,2\n"]);
        assert_eq!(
            found.len(),
            3,
            "{:?}",
            found.iter().map(|r| r.0).collect::<Vec<_>>()
        );
        assert_eq!((found[1].0, found[1].2), (2, true));
        assert!(found[1].1.len() <= 256);
        assert_eq!(found[2], (3, "1,2".to_string(), false));
    }

    #[test]
    fn gbk_is_detected_and_decoded() {
        let (bytes, _, _) = GB18030.encode("数据年月,人民币\n202101,5\n");
        let mut splitter = LineSplitter::new("f".into(), TextEncoding::Auto);
        let lines = splitter.push(&bytes, true).unwrap();
        assert_eq!(lines[0].text, "数据年月,人民币");
        assert_eq!(splitter.encoding_name(), "gb18030");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let mut splitter = LineSplitter::new("f".into(), TextEncoding::Utf8);
        let error = splitter.push(b"a,b\n1,2\n\xff,3\n", true).unwrap_err();
        assert!(error.to_string().contains("line 3"), "{error}");
    }
}
