//! The link emulator's admin commands:
//!
//! ```text
//! LINK.GET
//! LINK.SET [NODE] from to [DELAY] <delay> [kind=<delay> ...] [LOSS p] [DOWN] [ONEWAY] [LOCAL]
//! LINK.PARTITION [NODE] a b [LOCAL]
//! LINK.HEAL [[NODE] a b] [LOCAL]
//! LINK.RESET [LOCAL]
//! ```
//!
//! `from`/`to` and `a`/`b` are datacenters, or nodes after `NODE`. `<delay>` is the delay
//! syntax of the `[links]` configuration (`const(50)`, `40+exp(5)`, `preset:linkedin-ssd`,
//! see [`crate::net::delay::syntax`]); it may span several words (they are joined with
//! spaces), up to the first keyword. `p` is a probability (`0.01`) or a percentage (`1%`).
//! `LINK.SET` replaces the pair's whole spec, in both directions unless `ONEWAY`. A change
//! applies on every member unless the last word is `LOCAL`.
//!
//! `kind=<delay>` gives one message kind a delay of its own (the WARS legs, see
//! [`crate::net::links::kinds`]): `write_request` (or `write`, `w`), `write_ack` (`ack`,
//! `a`), `read_request` (`read`, `r`), `read_response` (`response`, `s`); other messages
//! take `<delay>`, which may then be left out (no delay). `NAME:ARGS` is accepted for
//! `NAME(ARGS)` in any delay (`exp:20`). The PBS paper's validation setup on one datacenter:
//!
//! ```text
//! LINK.SET dc1 dc1 write_request=exp:20 ack=exp:10 read_request=exp:10 read_response=exp:10
//! ```

use crate::net::{DelayDistribution, LinkChange, LinkPair, LinkSpec, MessageKind};
use crate::{Error, Result};

use super::Request;

/// Parses the arguments (after the name) of `link.set`, `link.partition`, `link.heal` or
/// `link.reset`.
pub(super) fn parse(canonical: &str, mut words: Vec<String>) -> Result<Request> {
    let local = words
        .last()
        .is_some_and(|word| word.eq_ignore_ascii_case("LOCAL"));
    if local {
        words.pop();
    }
    let change = parse_change(canonical, &words)?;
    Ok(Request::LinkUpdate { change, local })
}

/// Parses a change as [`LinkChange::to_words`] writes it (`SET dc1 dc2 const(50)`), as a peer
/// receives it.
pub fn change_from_words(words: &[String]) -> Result<LinkChange> {
    let Some((first, rest)) = words.split_first() else {
        return Err(Error::Command("ERR empty link change".into()));
    };
    let canonical = match first.to_ascii_uppercase().as_str() {
        "SET" => "link.set",
        "PARTITION" => "link.partition",
        "HEAL" => "link.heal",
        "RESET" => "link.reset",
        _ => {
            return Err(Error::Command(format!(
                "ERR unknown link change '{first}': expected SET, PARTITION, HEAL or RESET"
            )))
        }
    };
    parse_change(canonical, rest)
}

fn parse_change(canonical: &str, words: &[String]) -> Result<LinkChange> {
    let command = canonical.to_ascii_uppercase();
    match canonical {
        "link.set" => parse_set(&command, words),
        "link.partition" => {
            let (pair, rest) = pair(&command, words)?;
            expect_end(&command, rest)?;
            if pair.from == pair.to {
                return Err(fail(
                    &command,
                    format!(
                        "both sides are '{}': a partition needs two sides",
                        pair.from
                    ),
                ));
            }
            Ok(LinkChange::Partition { pair })
        }
        "link.heal" if words.is_empty() => Ok(LinkChange::Heal { pair: None }),
        "link.heal" => {
            let (pair, rest) = pair(&command, words)?;
            expect_end(&command, rest)?;
            Ok(LinkChange::Heal { pair: Some(pair) })
        }
        "link.reset" => {
            expect_end(&command, words)?;
            Ok(LinkChange::Reset)
        }
        _ => Err(Error::Command(format!(
            "ERR unhandled command '{canonical}'"
        ))),
    }
}

fn fail(command: &str, detail: String) -> Error {
    Error::Command(format!("ERR {command}: {detail}"))
}

/// `a b` or `NODE a b`, and the words after it.
fn pair<'a>(command: &str, words: &'a [String]) -> Result<(LinkPair, &'a [String])> {
    let node = words
        .first()
        .is_some_and(|word| word.eq_ignore_ascii_case("NODE"));
    let names = if node { &words[1..] } else { words };
    let what = if node { "node" } else { "datacenter" };
    let (Some(from), Some(to)) = (names.first(), names.get(1)) else {
        return Err(fail(
            command,
            format!("expected two {what} names, got {}", names.len()),
        ));
    };
    for name in [from, to] {
        if name.is_empty() {
            return Err(fail(command, format!("empty {what} name")));
        }
    }
    let pair = if node {
        LinkPair::nodes(from, to)
    } else {
        LinkPair::datacenters(from, to)
    };
    Ok((pair, &names[2..]))
}

fn expect_end(command: &str, rest: &[String]) -> Result<()> {
    match rest.first() {
        None => Ok(()),
        Some(word) => Err(fail(
            command,
            format!("unexpected '{word}' (only LOCAL may follow)"),
        )),
    }
}

fn is_keyword(word: &str) -> bool {
    ["LOSS", "DOWN", "ONEWAY"]
        .iter()
        .any(|keyword| word.eq_ignore_ascii_case(keyword))
}

fn parse_set(command: &str, words: &[String]) -> Result<LinkChange> {
    let (pair, mut rest) = pair(command, words)?;
    if rest
        .first()
        .is_some_and(|word| word.eq_ignore_ascii_case("DELAY"))
    {
        rest = &rest[1..];
    }
    let delay_words = rest.iter().take_while(|word| !is_keyword(word)).count();
    let (delay_words, mut options) = rest.split_at(delay_words);
    let mut spec = LinkSpec::default();
    let (delay_words, kind_words) = split_kinds(command, delay_words)?;
    if !delay_words.is_empty() {
        spec.delay = delay(command, &delay_words.join(" "))?;
    }
    for (kind, words) in &kind_words {
        if spec.kind_delays.get(*kind).is_some() {
            return Err(fail(command, format!("{kind} given twice")));
        }
        let distribution = delay(command, &words.join(" "))
            .map_err(|error| fail(command, format!("{kind}: {}", error_text(error))))?;
        spec.kind_delays.set(*kind, Some(distribution));
    }
    let (mut loss, mut symmetric) = (None, true);
    while let Some((word, after)) = options.split_first() {
        options = after;
        match word.to_ascii_uppercase().as_str() {
            "LOSS" => {
                let Some((value, after)) = options.split_first() else {
                    return Err(fail(command, "LOSS needs a probability".into()));
                };
                options = after;
                if loss.replace(probability(command, value)?).is_some() {
                    return Err(fail(command, "LOSS given twice".into()));
                }
            }
            "DOWN" => spec.partitioned = true,
            "ONEWAY" => symmetric = false,
            _ => {
                return Err(fail(
                    command,
                    format!(
                        "unexpected '{word}' after the options; the delay comes before LOSS, \
                         DOWN and ONEWAY"
                    ),
                ))
            }
        }
    }
    if delay_words.is_empty() && kind_words.is_empty() && loss.is_none() && !spec.partitioned {
        return Err(fail(
            command,
            format!("no delay, LOSS or DOWN given for {pair}"),
        ));
    }
    spec.loss = loss.unwrap_or(0.0);
    Ok(LinkChange::Set {
        pair,
        spec,
        symmetric,
    })
}

/// The words before the first `kind=...` word (the link's delay), and each kind's words.
type KindWords<'a> = Vec<(MessageKind, Vec<&'a str>)>;

fn split_kinds<'a>(command: &str, words: &'a [String]) -> Result<(&'a [String], KindWords<'a>)> {
    let mut base = words.len();
    let mut kinds: KindWords<'a> = Vec::new();
    for (index, word) in words.iter().enumerate() {
        match word.split_once('=') {
            Some((name, value)) => {
                let kind = MessageKind::from_name(name).ok_or_else(|| {
                    fail(
                        command,
                        format!(
                            "unknown message kind '{name}': expected write_request, write_ack, \
                             read_request or read_response"
                        ),
                    )
                })?;
                base = base.min(index);
                kinds.push((
                    kind,
                    if value.is_empty() {
                        vec![]
                    } else {
                        vec![value]
                    },
                ));
            }
            None => {
                if let Some((_, segment)) = kinds.last_mut() {
                    segment.push(word.as_str());
                }
            }
        }
    }
    if let Some((kind, _)) = kinds.iter().find(|(_, segment)| segment.is_empty()) {
        return Err(fail(command, format!("{kind}= needs a delay")));
    }
    Ok((&words[..base], kinds))
}

fn error_text(error: Error) -> String {
    match error {
        Error::Command(text) => text
            .split_once(": ")
            .map_or(text.clone(), |(_, rest)| rest.to_string()),
        other => other.to_string(),
    }
}

/// `exp:20` -> `exp(20)`, `uniform:1,3` -> `uniform(1,3)`; presets and everything else as
/// given.
fn shorthand(text: &str) -> String {
    match text.split_once(':') {
        Some((name, args))
            if !name.eq_ignore_ascii_case("preset")
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphabetic())
                && !args.contains(['(', ')', '+']) =>
        {
            format!("{name}({args})")
        }
        _ => text.to_string(),
    }
}

fn delay(command: &str, text: &str) -> Result<DelayDistribution> {
    shorthand(text)
        .parse::<DelayDistribution>()
        .map_err(|error| match error {
            Error::InvalidConfig { detail, .. } => fail(command, format!("bad delay {detail}")),
            other => fail(command, format!("bad delay: {other}")),
        })
}

/// `0.01` or `1%`, within `[0, 1]`.
fn probability(command: &str, word: &str) -> Result<f64> {
    let value = match word.strip_suffix('%') {
        Some(percent) => percent
            .trim()
            .parse::<f64>()
            .ok()
            .map(|value| value / 100.0),
        None => word.trim().parse::<f64>().ok(),
    };
    value
        .filter(|value| (0.0..=1.0).contains(value))
        .ok_or_else(|| {
            fail(
                command,
                format!(
                    "LOSS must be a probability from 0 to 1 or a percentage such as 1%, \
                     got '{word}'"
                ),
            )
        })
}

#[cfg(test)]
mod tests;
