//! The ring-change commands (see [`crate::scaling`]):
//!
//! ```text
//! CLUSTER.JOIN id datacenter client_address peer_address [WEIGHT w]
//! CLUSTER.LEAVE
//! CLUSTER.REMOVE id
//! CLUSTER.CLEANUP [COMPACT]
//! ```

use super::{syntax_error, text, Request};
use crate::config::MemberConfig;
use crate::ring::NAME_LENGTH_MAX;
use crate::scaling::ScalingRequest;
use crate::{Error, Result};

/// Parses the arguments after the command name; arity is already checked.
pub(super) fn parse(canonical: &str, arguments: impl Iterator<Item = Vec<u8>>) -> Result<Request> {
    let words: Vec<String> = arguments.map(text).collect::<Result<_>>()?;
    let request = match canonical {
        "cluster.leave" => ScalingRequest::Leave,
        "cluster.remove" => ScalingRequest::Remove(name("id", &words[0])?),
        "cluster.cleanup" => match words.first() {
            None => ScalingRequest::Cleanup { compact: false },
            Some(word) if word.eq_ignore_ascii_case("compact") => {
                ScalingRequest::Cleanup { compact: true }
            }
            Some(word) => {
                return Err(Error::Command(format!(
                    "ERR CLUSTER.CLEANUP takes nothing or COMPACT, got {word:?}"
                )))
            }
        },
        _ => ScalingRequest::Join(member(&words)?),
    };
    Ok(Request::ClusterChange(request))
}

fn name(field: &str, word: &str) -> Result<String> {
    if word.is_empty() || word.len() > NAME_LENGTH_MAX {
        return Err(syntax_error(&format!(
            "{field} must be 1 to {NAME_LENGTH_MAX} bytes"
        )));
    }
    Ok(word.to_string())
}

fn member(words: &[String]) -> Result<MemberConfig> {
    let address = |field: &str, word: &str| {
        word.parse()
            .map_err(|_| syntax_error(&format!("{field} {word:?} is not an address (ip:port)")))
    };
    let weight = match &words[4..] {
        [] => 1,
        [option, value] if option.eq_ignore_ascii_case("weight") => match value.parse::<u32>() {
            Ok(weight) if weight > 0 => weight,
            _ => {
                return Err(Error::Command(format!(
                    "ERR WEIGHT {value:?} is not a positive integer"
                )))
            }
        },
        _ => return Err(syntax_error("expected WEIGHT <w> after the addresses")),
    };
    Ok(MemberConfig {
        id: name("id", &words[0])?,
        datacenter: name("datacenter", &words[1])?,
        weight,
        client_address: address("client_address", &words[2])?,
        peer_address: address("peer_address", &words[3])?,
    })
}

#[cfg(test)]
mod tests {
    use crate::protocol::{Limits, Request};
    use crate::scaling::ScalingRequest;

    fn parse(words: &[&str]) -> crate::Result<Request> {
        let frame = words.iter().map(|word| word.as_bytes().to_vec()).collect();
        Request::parse(frame, &Limits::default())
    }

    #[test]
    fn parses_join_leave_and_remove() {
        let Request::ClusterChange(ScalingRequest::Join(member)) = parse(&[
            "cluster.join",
            "n4",
            "dc1",
            "127.0.0.4:7379",
            "127.0.0.4:7380",
            "WEIGHT",
            "2",
        ])
        .unwrap() else {
            panic!("not a join")
        };
        assert_eq!((member.id.as_str(), member.weight), ("n4", 2));
        assert_eq!(member.peer_address.port(), 7380);
        assert_eq!(
            parse(&["CLUSTER.LEAVE"]).unwrap(),
            Request::ClusterChange(ScalingRequest::Leave)
        );
        assert_eq!(
            parse(&["cluster.remove", "n2"]).unwrap(),
            Request::ClusterChange(ScalingRequest::Remove("n2".into()))
        );
        assert_eq!(
            parse(&["CLUSTER.CLEANUP"]).unwrap(),
            Request::ClusterChange(ScalingRequest::Cleanup { compact: false })
        );
        assert_eq!(
            parse(&["cluster.cleanup", "Compact"]).unwrap(),
            Request::ClusterChange(ScalingRequest::Cleanup { compact: true })
        );
    }

    #[test]
    fn bad_arguments_name_the_field() {
        let error = parse(&["cluster.join", "n4", "dc1", "nowhere", "127.0.0.4:7380"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("client_address"), "{error}");
        let error = parse(&[
            "cluster.join",
            "n4",
            "dc1",
            "127.0.0.4:1",
            "127.0.0.4:2",
            "WEIGHT",
            "0",
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("WEIGHT"), "{error}");
        assert!(parse(&["cluster.remove"]).is_err());
        assert!(parse(&["cluster.leave", "x"]).is_err());
        let error = parse(&["cluster.cleanup", "now"]).unwrap_err().to_string();
        assert!(error.contains("COMPACT"), "{error}");
        assert!(parse(&["cluster.cleanup", "compact", "x"]).is_err());
    }
}
