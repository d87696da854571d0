//! Helpers shared by the process tests.

/// One command as a RESP array of bulk strings, the form every client sends.
pub fn encode_command(arguments: &[&str]) -> String {
    let mut request = format!("*{}\r\n", arguments.len());
    for argument in arguments {
        request.push_str(&format!("${}\r\n{argument}\r\n", argument.len()));
    }
    request
}
