//! The Redis commands clients and tools send, with Redis's argument rules and error texts.

use super::{
    arity_error, lossy_prefix, not_an_integer, syntax_error, text, unknown_subcommand,
    ClientRequest, CommandQuery, Credentials, Request,
};
use crate::{Error, Result};
use std::vec::IntoIter;

/// SET options Redis has and this store refuses (no TTLs, no conditional writes yet):
/// named in the error so a user knows it is unsupported, not misspelt.
const UNSUPPORTED_SET_OPTIONS: &[&str] =
    &["EX", "PX", "EXAT", "PXAT", "NX", "XX", "KEEPTTL", "GET"];

/// Parses a Redis command whose name is `canonical` and arity already checked; `arguments`
/// follow the name.
pub(super) fn parse(canonical: &str, mut arguments: IntoIter<Vec<u8>>) -> Result<Request> {
    let request = match canonical {
        "ping" => Request::Ping {
            message: arguments.next(),
        },
        "echo" => Request::Echo {
            message: take(&mut arguments),
        },
        "get" => Request::Get {
            key: take(&mut arguments),
        },
        "set" => {
            let (key, value) = (take(&mut arguments), take(&mut arguments));
            if let Some(option) = arguments.next() {
                return Err(set_option_error(&option));
            }
            Request::Set { key, value }
        }
        "del" => Request::Delete {
            keys: arguments.collect(),
        },
        "exists" => Request::Exists {
            keys: arguments.collect(),
        },
        "mget" => Request::MultiGet {
            keys: arguments.collect(),
        },
        "info" => Request::Info {
            sections: arguments.map(text).collect::<Result<_>>()?,
        },
        "command" => Request::Command(command_query(arguments)?),
        "config" => config(arguments)?,
        "client" => Request::Client(client(arguments)?),
        "select" => select(&take(&mut arguments))?,
        "hello" => hello(arguments)?,
        "quit" => Request::Quit,
        "auth" => auth(arguments.collect())?,
        _ => {
            return Err(Error::Command(format!(
                "ERR unhandled command '{canonical}'"
            )))
        }
    };
    Ok(request)
}

fn take(arguments: &mut IntoIter<Vec<u8>>) -> Vec<u8> {
    arguments.next().unwrap_or_default()
}

fn set_option_error(option: &[u8]) -> Error {
    let upper = String::from_utf8_lossy(option).to_ascii_uppercase();
    if UNSUPPORTED_SET_OPTIONS.contains(&upper.as_str()) {
        Error::Command(format!(
            "ERR SET option '{}' is not supported by this store",
            lossy_prefix(option, 128)
        ))
    } else {
        syntax_error("")
    }
}

fn command_query(mut arguments: IntoIter<Vec<u8>>) -> Result<CommandQuery> {
    let Some(subcommand) = arguments.next() else {
        return Ok(CommandQuery::All);
    };
    let names = |arguments: IntoIter<Vec<u8>>| arguments.map(text).collect::<Result<Vec<_>>>();
    let query = match subcommand.to_ascii_uppercase().as_slice() {
        b"COUNT" if arguments.len() == 0 => CommandQuery::Count,
        b"COUNT" => return Err(arity_error("command|count")),
        b"DOCS" => CommandQuery::Docs {
            names: names(arguments)?,
        },
        b"INFO" => CommandQuery::Info {
            names: names(arguments)?,
        },
        // LIST's FILTERBY options are accepted and ignored: the node's list is short.
        b"LIST" => CommandQuery::List,
        _ => return Err(unknown_subcommand(&subcommand, "COMMAND")),
    };
    Ok(query)
}

fn config(mut arguments: IntoIter<Vec<u8>>) -> Result<Request> {
    let subcommand = arguments.next().unwrap_or_default();
    match subcommand.to_ascii_uppercase().as_slice() {
        b"GET" if arguments.len() == 0 => Err(arity_error("config|get")),
        b"GET" => Ok(Request::ConfigGet {
            patterns: arguments.map(text).collect::<Result<_>>()?,
        }),
        b"SET" | b"RESETSTAT" | b"REWRITE" => Err(Error::Command(format!(
            "ERR CONFIG {} is not supported by this store",
            lossy_prefix(&subcommand, 32).to_ascii_uppercase()
        ))),
        _ => Err(unknown_subcommand(&subcommand, "CONFIG")),
    }
}

fn client(mut arguments: IntoIter<Vec<u8>>) -> Result<ClientRequest> {
    let subcommand = arguments.next().unwrap_or_default();
    let upper = subcommand.to_ascii_uppercase();
    let (canonical, count) = match upper.as_slice() {
        b"SETNAME" => ("client|setname", 1),
        b"GETNAME" => ("client|getname", 0),
        b"SETINFO" => ("client|setinfo", 2),
        b"ID" => ("client|id", 0),
        _ => return Err(unknown_subcommand(&subcommand, "CLIENT")),
    };
    if arguments.len() != count {
        return Err(arity_error(canonical));
    }
    let request = match upper.as_slice() {
        b"SETNAME" => {
            let name = take(&mut arguments);
            // Redis's rule: names appear in CLIENT LIST, which is space separated.
            if !name.iter().all(|byte| (b'!'..=b'~').contains(byte)) {
                return Err(Error::Command(
                    "ERR Client names cannot contain spaces, newlines or special characters."
                        .into(),
                ));
            }
            ClientRequest::SetName { name }
        }
        b"GETNAME" => ClientRequest::GetName,
        b"SETINFO" => {
            let attribute = take(&mut arguments);
            let upper_attribute = attribute.to_ascii_uppercase();
            if upper_attribute != b"LIB-NAME" && upper_attribute != b"LIB-VER" {
                return Err(Error::Command(format!(
                    "ERR Unrecognized option '{}'",
                    lossy_prefix(&attribute, 128)
                )));
            }
            ClientRequest::SetInfo {
                attribute: String::from_utf8_lossy(&upper_attribute).into_owned(),
                value: take(&mut arguments),
            }
        }
        _ => ClientRequest::Id,
    };
    Ok(request)
}

fn select(database: &[u8]) -> Result<Request> {
    match std::str::from_utf8(database).ok().map(str::parse::<i64>) {
        Some(Ok(0)) => Ok(Request::Select),
        Some(Ok(_)) => Err(Error::Command("ERR DB index is out of range".into())),
        _ => Err(not_an_integer()),
    }
}

fn hello(mut arguments: IntoIter<Vec<u8>>) -> Result<Request> {
    let Some(version) = arguments.next() else {
        return Ok(Request::Hello {
            protocol_version: None,
            credentials: None,
            client_name: None,
        });
    };
    let version: u32 = std::str::from_utf8(&version)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            Error::Command("ERR Protocol version is not an integer or out of range".into())
        })?;
    if version != 2 {
        // RESP3 is not spoken; NOPROTO is what makes redis-py and others fall back to RESP2.
        return Err(Error::Command(
            "NOPROTO unsupported protocol version".into(),
        ));
    }
    let (mut credentials, mut client_name) = (None, None);
    while let Some(option) = arguments.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"AUTH" if arguments.len() >= 2 => {
                let username = arguments.next();
                let password = arguments.next().unwrap_or_default();
                credentials = Some(Credentials { username, password });
            }
            b"SETNAME" if arguments.len() >= 1 => client_name = arguments.next(),
            _ => {
                return Err(Error::Command(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    lossy_prefix(&option, 128)
                )))
            }
        }
    }
    Ok(Request::Hello {
        protocol_version: Some(version),
        credentials,
        client_name,
    })
}

fn auth(mut arguments: Vec<Vec<u8>>) -> Result<Request> {
    match arguments.len() {
        1 => Ok(Request::Auth(Credentials {
            username: None,
            password: arguments.pop().unwrap_or_default(),
        })),
        2 => {
            let password = arguments.pop().unwrap_or_default();
            Ok(Request::Auth(Credentials {
                username: arguments.pop(),
                password,
            }))
        }
        // Redis's choice for AUTH with too many arguments.
        _ => Err(syntax_error("")),
    }
}
