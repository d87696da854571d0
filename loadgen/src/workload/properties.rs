//! Java-properties files as YCSB reads them (`-P file`, then `-p name=value`).
//!
//! The syntax follows `java.util.Properties.load`: a line whose first non-blank character is
//! `#` or `!` is a comment; a key ends at the first unescaped `=`, `:` or blank; blanks and
//! one `=`/`:` separate it from the value; the value keeps its trailing blanks (Java does);
//! a line ending in an odd number of backslashes continues on the next line, whose leading
//! blanks are dropped; `\t \n \r \f \uXXXX` are escapes and `\x` is `x` otherwise. Files
//! are read as ISO-8859-1, as `Properties.load(InputStream)` does.

use std::path::Path;

use crate::error::{Error, Result};

/// Longest workload file read; YCSB files are a few KiB, so anything larger is a wrong path.
pub const FILE_SIZE_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Properties in first-set order; setting a name again replaces its value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<(String, String)>,
}

impl Properties {
    /// No properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// Properties parsed from the text of a properties file.
    pub fn parse(text: &str) -> Self {
        let mut properties = Self::new();
        properties.load(text);
        properties
    }

    /// Adds (or replaces) the properties of a file's text, as a further `-P file` does.
    pub fn load(&mut self, text: &str) {
        for logical_line in logical_lines(text) {
            if let Some((name, value)) = split_entry(&logical_line) {
                self.set(&name, &value);
            }
        }
    }

    /// Adds the properties of a file read as ISO-8859-1 (every byte is one character).
    pub fn load_file(&mut self, path: &Path) -> Result<()> {
        let io_error = |source| Error::Io {
            context: format!("workload file {}", path.display()),
            source,
        };
        let size_bytes = std::fs::metadata(path).map_err(io_error)?.len();
        if size_bytes > FILE_SIZE_BYTES_MAX {
            return Err(Error::InvalidProperty {
                name: "-P".to_string(),
                value: path.display().to_string(),
                detail: format!(
                    "file is {size_bytes} bytes, over the {FILE_SIZE_BYTES_MAX}-byte limit"
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(io_error)?;
        let text: String = bytes.iter().map(|&byte| char::from(byte)).collect();
        self.load(&text);
        Ok(())
    }

    /// Applies a `-p name=value` argument. YCSB splits at the first `=` and trims nothing.
    pub fn apply_override(&mut self, argument: &str) -> Result<()> {
        match argument.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                self.set(name, value);
                Ok(())
            }
            _ => Err(Error::MalformedPropertyOverride(argument.to_string())),
        }
    }

    /// Builds the properties of a YCSB command line: every `-P` file in order (a later file
    /// wins), then every `-p` override. YCSB's client applies the `-p` values after all
    /// files, so an override wins wherever it appears on the command line.
    pub fn from_command_line(files: &[&Path], overrides: &[&str]) -> Result<Self> {
        let mut properties = Self::new();
        for file in files {
            properties.load_file(file)?;
        }
        for argument in overrides {
            properties.apply_override(argument)?;
        }
        Ok(properties)
    }

    /// Sets a property, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: &str) {
        match self
            .entries
            .iter_mut()
            .find(|(existing, _)| existing == name)
        {
            Some(entry) => entry.1 = value.to_string(),
            None => self.entries.push((name.to_string(), value.to_string())),
        }
    }

    /// The raw value of a property, exactly as written (trailing blanks kept).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(existing, _)| existing == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every property, in first-set order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Names not in `known_names`, in first-set order. YCSB silently ignores them, so a typo
    /// (`readproportoin`) would run a different workload than intended: callers print these
    /// as warnings rather than errors, since database bindings read their own properties.
    pub fn unknown(&self, known_names: &[&str]) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(name, _)| !known_names.contains(&name.as_str()))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Joins continued lines and drops comments and blank lines.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending: Option<String> = None;
    // Java ends a line at "\r\n", "\n" or "\r"; "\r\n" must count once, or a continuation
    // would end at the empty line between the two characters.
    let normalized = text.replace("\r\n", "\n");
    for physical_line in normalized.split(['\n', '\r']) {
        let stripped = physical_line.trim_start_matches(is_blank);
        let line = match pending.take() {
            Some(mut joined) => {
                joined.push_str(stripped);
                joined
            }
            None => {
                if stripped.is_empty() || stripped.starts_with(['#', '!']) {
                    continue;
                }
                stripped.to_string()
            }
        };
        if ends_with_odd_backslashes(&line) {
            let mut continued = line;
            continued.pop();
            pending = Some(continued);
        } else {
            lines.push(line);
        }
    }
    // Java keeps a dangling continuation at end of input as it is.
    lines.extend(pending);
    lines
}

fn is_blank(character: char) -> bool {
    matches!(character, ' ' | '\t' | '\x0c')
}

fn ends_with_odd_backslashes(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits a logical line into an unescaped name and value.
fn split_entry(line: &str) -> Option<(String, String)> {
    let characters: Vec<char> = line.chars().collect();
    let mut index = 0;
    let mut escaped = false;
    while index < characters.len() {
        let character = characters[index];
        if escaped {
            escaped = false;
        } else if character == '\\' {
            escaped = true;
        } else if character == '=' || character == ':' || is_blank(character) {
            break;
        }
        index += 1;
    }
    let name: String = characters[..index].iter().collect();
    while index < characters.len() && is_blank(characters[index]) {
        index += 1;
    }
    if index < characters.len() && (characters[index] == '=' || characters[index] == ':') {
        index += 1;
        while index < characters.len() && is_blank(characters[index]) {
            index += 1;
        }
    }
    let value: String = characters[index..].iter().collect();
    if name.is_empty() && value.is_empty() {
        return None;
    }
    Some((unescape(&name), unescape(&value)))
}

fn unescape(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            output.push(character);
            continue;
        }
        match characters.next() {
            Some('t') => output.push('\t'),
            Some('n') => output.push('\n'),
            Some('r') => output.push('\r'),
            Some('f') => output.push('\x0c'),
            Some('u') => {
                let hex: String = characters.by_ref().take(4).collect();
                // Java throws on a malformed \u escape; keeping the text is friendlier and the
                // typed getters will still reject a value that means nothing.
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) if hex.len() == 4 => output.push(decoded),
                    _ => {
                        output.push_str("\\u");
                        output.push_str(&hex);
                    }
                }
            }
            Some(other) => output.push(other),
            None => {}
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_comments_and_blank_lines() {
        let properties = Properties::parse(
            "# comment   \n! bang comment\n\n  a=1\nb : 2\nc 3\nd\t=  4  \ne=\nf\n",
        );
        assert_eq!(properties.get("a"), Some("1"));
        assert_eq!(properties.get("b"), Some("2"));
        assert_eq!(properties.get("c"), Some("3"));
        // Java keeps trailing blanks of a value.
        assert_eq!(properties.get("d"), Some("4  "));
        assert_eq!(properties.get("e"), Some(""));
        assert_eq!(properties.get("f"), Some(""));
        assert_eq!(properties.len(), 6);
    }

    #[test]
    fn continuation_lines_and_escapes() {
        let properties =
            Properties::parse("list = one, \\\r\n      two, \\\n  three\nkey\\ with\\=odd = v\\tx\\u0041\nw=a\\\\\nz=1\r\n");
        assert_eq!(properties.get("list"), Some("one, two, three"));
        assert_eq!(properties.get("key with=odd"), Some("v\txA"));
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(properties.get("w"), Some("a\\"));
        assert_eq!(properties.get("z"), Some("1"));
    }

    #[test]
    fn later_value_wins_and_order_is_kept() {
        let mut properties = Properties::parse("a=1\nb=2\na=3\n");
        properties.apply_override("b=x=y").unwrap();
        properties.apply_override("c= spaced ").unwrap();
        let entries: Vec<_> = properties.iter().collect();
        assert_eq!(entries, vec![("a", "3"), ("b", "x=y"), ("c", " spaced ")]);
    }

    #[test]
    fn malformed_override_is_an_error() {
        let mut properties = Properties::new();
        let error = properties.apply_override("recordcount").unwrap_err();
        assert!(error.to_string().contains("recordcount"), "{error}");
        assert!(properties.apply_override("=5").is_err());
    }

    #[test]
    fn unknown_names_are_listed() {
        let properties = Properties::parse("readproportion=1\nreadproportoin=0.5\n");
        assert_eq!(
            properties.unknown(&["readproportion"]),
            vec!["readproportoin"]
        );
    }

    #[test]
    fn files_then_overrides() {
        let directory = tempfile::tempdir().unwrap();
        let first = directory.path().join("first");
        let second = directory.path().join("second");
        std::fs::write(&first, "a=1\nb=1\n").unwrap();
        // ISO-8859-1: byte 0xE9 is 'é'.
        std::fs::write(&second, b"b=2\nname=caf\xe9\n").unwrap();
        let properties =
            Properties::from_command_line(&[first.as_path(), second.as_path()], &["a=9"]).unwrap();
        assert_eq!(properties.get("a"), Some("9"));
        assert_eq!(properties.get("b"), Some("2"));
        assert_eq!(properties.get("name"), Some("café"));
        let missing = directory.path().join("missing");
        let error = Properties::from_command_line(&[missing.as_path()], &[]).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
    }
}
