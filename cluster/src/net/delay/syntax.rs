//! The compact text syntax for delay distributions, used by admin commands, CLI flags and
//! (as a string) in TOML files.
//!
//! ```text
//! spec      := expr
//! expr      := NUMBER '+' expr              shift: fixed offset plus a random part
//!            | term
//! term      := NUMBER                       constant, the same as const(NUMBER)
//!            | 'const' '(' ms ')'
//!            | 'uniform' '(' min_ms ',' max_ms ')'
//!            | 'normal' '(' mean_ms ',' stddev_ms ')'     truncated at zero
//!            | 'exp' '(' mean_ms ')'
//!            | 'pareto' '(' scale_ms ',' shape ')'        x_m and alpha
//!            | 'mix' '(' component (',' component)* ')'
//!            | 'preset' ':' PRESET_NAME                   see net::presets
//!            | '(' expr ')'
//! component := WEIGHT '*' expr              weights are relative, need not sum to 1
//! NUMBER    := decimal, optional fraction and exponent, e.g. 50, 0.25, 1e3
//! ```
//!
//! All numbers are milliseconds except `shape` and weights. Whitespace between tokens is
//! ignored; `constant`, `exponential` and `mixture` are accepted as long names. Examples:
//! `const(50)`, `uniform(1,3)`, `normal(50,5)`, `exp(20)`, `pareto(10,1.5)`,
//! `mix(0.9*exp(5),0.1*pareto(50,1.2))`, `50+exp(5)`, `75+preset:linkedin-ssd`.
//!
//! [`Display`](std::fmt::Display) prints the canonical form (short names, no spaces, a
//! shifted mixture component in parentheses) and parsing it gives back an equal value;
//! presets print expanded. Errors name the column and the offending token.

use std::fmt;
use std::str::FromStr;

use super::{DelayDistribution, MixtureComponent, MAX_DEPTH, MAX_MIXTURE_COMPONENTS};
use crate::net::presets;
use crate::{Error, Result};

/// Longest text accepted: far above any real spec (a three-way mixture of shifted
/// distributions is under 100 characters), small enough to bound parsing work.
pub const MAX_SPEC_LENGTH: usize = 1024;

impl FromStr for DelayDistribution {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        parse(text)
    }
}

/// Parses and validates a distribution in the text syntax.
pub fn parse(text: &str) -> Result<DelayDistribution> {
    let fail = |detail: String| Error::InvalidConfig {
        field: "delay".to_string(),
        detail: format!("`{text}`: {detail}"),
    };
    if text.len() > MAX_SPEC_LENGTH {
        return Err(Error::LimitExceeded {
            what: "delay spec",
            size: text.len(),
            limit: MAX_SPEC_LENGTH,
        });
    }
    let tokens = tokenize(text).map_err(fail)?;
    let mut parser = Parser {
        tokens,
        position: 0,
        end_column: text.chars().count() + 1,
    };
    let distribution = parser.expr(1).map_err(fail)?;
    if let Some(token) = parser.peek() {
        return Err(fail(format!(
            "column {}: unexpected {} after the end of the distribution",
            token.column,
            token.describe()
        )));
    }
    distribution.validate().map_err(|error| match error {
        Error::InvalidConfig { detail, .. } => fail(detail),
        other => other,
    })?;
    Ok(distribution)
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Number(f64),
    Name(String),
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: String,
    /// 1-based character column, for error messages.
    column: usize,
}

impl Token {
    fn describe(&self) -> String {
        format!("'{}'", self.text)
    }
}

fn tokenize(text: &str) -> std::result::Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let start = index;
        let current = chars[index];
        let kind = if current.is_whitespace() {
            index += 1;
            continue;
        } else if "()*,+:".contains(current) {
            index += 1;
            Kind::Punct(current)
        } else if current.is_ascii_digit() || current == '.' || current == '-' {
            index += 1;
            while index < chars.len() && (chars[index].is_ascii_digit() || chars[index] == '.') {
                index += 1;
            }
            // An exponent's sign is part of the number; any other '+' is the shift operator.
            if index < chars.len() && (chars[index] == 'e' || chars[index] == 'E') {
                index += 1;
                if index < chars.len() && (chars[index] == '+' || chars[index] == '-') {
                    index += 1;
                }
                while index < chars.len() && chars[index].is_ascii_digit() {
                    index += 1;
                }
            }
            let literal: String = chars[start..index].iter().collect();
            let value = literal
                .parse::<f64>()
                .map_err(|_| format!("column {}: bad number '{literal}'", start + 1))?;
            Kind::Number(value)
        } else if current.is_ascii_alphabetic() {
            while index < chars.len()
                && (chars[index].is_ascii_alphanumeric()
                    || chars[index] == '-'
                    || chars[index] == '_')
            {
                index += 1;
            }
            Kind::Name(
                chars[start..index]
                    .iter()
                    .collect::<String>()
                    .to_ascii_lowercase(),
            )
        } else {
            return Err(format!(
                "column {}: unexpected character '{current}'",
                start + 1
            ));
        };
        tokens.push(Token {
            kind,
            text: chars[start..index].iter().collect(),
            column: start + 1,
        });
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    end_column: usize,
}

type ParseResult<T> = std::result::Result<T, String>;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn peek_kind(&self, offset: usize) -> Option<&Kind> {
        self.tokens
            .get(self.position + offset)
            .map(|token| &token.kind)
    }

    fn next(&mut self, expected: &str) -> ParseResult<Token> {
        match self.tokens.get(self.position) {
            Some(token) => {
                self.position += 1;
                Ok(token.clone())
            }
            None => Err(format!(
                "column {}: expected {expected}, found the end of the input",
                self.end_column
            )),
        }
    }

    fn unexpected(token: &Token, expected: &str) -> String {
        format!(
            "column {}: expected {expected}, found {}",
            token.column,
            token.describe()
        )
    }

    fn expect_punct(&mut self, punct: char) -> ParseResult<()> {
        let expected = format!("'{punct}'");
        let token = self.next(&expected)?;
        if token.kind == Kind::Punct(punct) {
            Ok(())
        } else {
            Err(Self::unexpected(&token, &expected))
        }
    }

    fn expect_number(&mut self, expected: &str) -> ParseResult<f64> {
        let token = self.next(expected)?;
        match token.kind {
            Kind::Number(value) => Ok(value),
            _ => Err(Self::unexpected(&token, expected)),
        }
    }

    fn expr(&mut self, depth: usize) -> ParseResult<DelayDistribution> {
        if depth > MAX_DEPTH {
            let column = self.peek().map_or(self.end_column, |token| token.column);
            return Err(format!(
                "column {column}: nested more than {MAX_DEPTH} levels deep"
            ));
        }
        if let Some(Kind::Number(value)) = self.peek_kind(0) {
            let value = *value;
            self.position += 1;
            if self.peek_kind(0) == Some(&Kind::Punct('+')) {
                self.position += 1;
                let inner = self.expr(depth + 1)?;
                return Ok(DelayDistribution::shifted(value, inner));
            }
            return Ok(DelayDistribution::Constant { ms: value });
        }
        self.term(depth)
    }

    fn term(&mut self, depth: usize) -> ParseResult<DelayDistribution> {
        const EXPECTED: &str =
            "a distribution (a number, const, uniform, normal, exp, pareto, mix, preset:NAME or '(')";
        let token = self.next(EXPECTED)?;
        let name = match &token.kind {
            Kind::Punct('(') => {
                let inner = self.expr(depth + 1)?;
                self.expect_punct(')')?;
                return Ok(inner);
            }
            Kind::Name(name) => name.clone(),
            _ => return Err(Self::unexpected(&token, EXPECTED)),
        };
        let distribution = match name.as_str() {
            "const" | "constant" => {
                let [ms] = self.arguments(&token, ["ms"])?;
                DelayDistribution::Constant { ms }
            }
            "uniform" => {
                let [min_ms, max_ms] = self.arguments(&token, ["min_ms", "max_ms"])?;
                DelayDistribution::Uniform { min_ms, max_ms }
            }
            "normal" => {
                let [mean_ms, stddev_ms] = self.arguments(&token, ["mean_ms", "stddev_ms"])?;
                DelayDistribution::Normal { mean_ms, stddev_ms }
            }
            "exp" | "exponential" => {
                let [mean_ms] = self.arguments(&token, ["mean_ms"])?;
                DelayDistribution::Exponential { mean_ms }
            }
            "pareto" => {
                let [scale_ms, shape] = self.arguments(&token, ["scale_ms", "shape"])?;
                DelayDistribution::Pareto { scale_ms, shape }
            }
            "mix" | "mixture" => self.mixture(&token, depth)?,
            "preset" => {
                self.expect_punct(':')?;
                let expected = "a preset name";
                let preset = self.next(expected)?;
                let Kind::Name(preset_name) = &preset.kind else {
                    return Err(Self::unexpected(&preset, expected));
                };
                presets::lookup(preset_name).ok_or_else(|| {
                    format!(
                        "column {}: unknown preset '{}' (known: {})",
                        preset.column,
                        preset.text,
                        presets::names().join(", ")
                    )
                })?
            }
            _ => {
                return Err(format!(
                    "column {}: unknown distribution '{}' (expected const, uniform, normal, \
                     exp, pareto, mix or preset:NAME)",
                    token.column, token.text
                ))
            }
        };
        Ok(distribution)
    }

    /// `'(' NUMBER (',' NUMBER)* ')'` with exactly `N` numbers, named for error messages.
    fn arguments<const N: usize>(
        &mut self,
        function: &Token,
        names: [&str; N],
    ) -> ParseResult<[f64; N]> {
        let signature = format!("{}({})", function.text, names.join(","));
        self.expect_punct('(')?;
        let mut values = [0.0; N];
        for (index, name) in names.iter().enumerate() {
            if index > 0 {
                self.expect_punct(',')
                    .map_err(|error| format!("{error}; {signature} takes {N} arguments"))?;
            }
            values[index] = self
                .expect_number(&format!("a number for {name}"))
                .map_err(|error| format!("{error}; usage: {signature}"))?;
        }
        self.expect_punct(')')
            .map_err(|error| format!("{error}; {signature} takes {N} argument(s)"))?;
        Ok(values)
    }

    fn mixture(&mut self, function: &Token, depth: usize) -> ParseResult<DelayDistribution> {
        self.expect_punct('(')?;
        let mut components = Vec::new();
        loop {
            if components.len() == MAX_MIXTURE_COMPONENTS {
                return Err(format!(
                    "column {}: more than {MAX_MIXTURE_COMPONENTS} mixture components",
                    function.column
                ));
            }
            let weight = self.expect_number("a weight (as in mix(0.9*exp(5),0.1*exp(50)))")?;
            self.expect_punct('*')?;
            let delay = self.expr(depth + 1)?;
            components.push(MixtureComponent { weight, delay });
            let expected = "',' or ')'";
            let token = self.next(expected)?;
            match token.kind {
                Kind::Punct(',') => continue,
                Kind::Punct(')') => break,
                _ => return Err(Self::unexpected(&token, expected)),
            }
        }
        Ok(DelayDistribution::Mixture { components })
    }
}

impl fmt::Display for DelayDistribution {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DelayDistribution::Constant { ms } => write!(formatter, "const({ms})"),
            DelayDistribution::Uniform { min_ms, max_ms } => {
                write!(formatter, "uniform({min_ms},{max_ms})")
            }
            DelayDistribution::Normal { mean_ms, stddev_ms } => {
                write!(formatter, "normal({mean_ms},{stddev_ms})")
            }
            DelayDistribution::Exponential { mean_ms } => write!(formatter, "exp({mean_ms})"),
            DelayDistribution::Pareto { scale_ms, shape } => {
                write!(formatter, "pareto({scale_ms},{shape})")
            }
            DelayDistribution::Shifted { offset_ms, inner } => {
                write!(formatter, "{offset_ms}+{inner}")
            }
            DelayDistribution::Mixture { components } => {
                formatter.write_str("mix(")?;
                for (index, component) in components.iter().enumerate() {
                    if index > 0 {
                        formatter.write_str(",")?;
                    }
                    // `0.1*(50+exp(5))` reads unambiguously; `0.1*50+exp(5)` parses the
                    // same but looks like arithmetic.
                    match &component.delay {
                        DelayDistribution::Shifted { .. } => {
                            write!(formatter, "{}*({})", component.weight, component.delay)?
                        }
                        other => write!(formatter, "{}*{other}", component.weight)?,
                    }
                }
                formatter.write_str(")")
            }
        }
    }
}
