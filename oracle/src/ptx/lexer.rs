//! Splits PTX text into tokens with line and column, skipping `//` and `/* */` comments.
//!
//! The lexer accepts any byte sequence: unknown characters become an error naming their line and
//! column. It must never panic and never loop without consuming input.

use crate::error::{Error, Result};

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Identifier, register (`%r1`, `%tid.x`) or label name.
    Ident(String),
    /// `.name` (directive, modifier, type).
    Dot(String),
    /// Integer literal.
    Int(i128),
    /// `0f...` literal.
    F32(u32),
    /// `0d...` literal.
    F64(u64),
    /// Decimal float literal.
    Float(f64),
    /// Single punctuation character.
    Punct(char),
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

const SPECIAL_REGS: [&str; 4] = ["%tid", "%ntid", "%ctaid", "%nctaid"];

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
    col: u32,
}

/// Tokenizes `src`.
pub fn lex(src: &str) -> Result<Vec<Token>> {
    let mut lx = Lexer {
        src: src.as_bytes(),
        pos: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    while let Some(t) = lx.next_token()? {
        out.push(t);
    }
    Ok(out)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c == b'%'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

impl Lexer<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.src.get(self.pos + k).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, line: u32, col: u32, msg: impl Into<String>) -> Error {
        Error::Parse {
            line,
            col,
            msg: msg.into(),
        }
    }

    fn skip_trivia(&mut self) -> Result<()> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_ascii_whitespace() => {
                    self.bump();
                }
                (Some(b'/'), Some(b'/')) => {
                    while let Some(c) = self.peek(0) {
                        if c == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    let (line, col) = (self.line, self.col);
                    self.bump();
                    self.bump();
                    loop {
                        match (self.peek(0), self.peek(1)) {
                            (Some(b'*'), Some(b'/')) => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            (Some(_), _) => {
                                self.bump();
                            }
                            (None, _) => return Err(self.err(line, col, "unterminated comment")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> String {
        let start = self.pos;
        while let Some(c) = self.peek(0) {
            if !f(c) {
                break;
            }
            self.bump();
        }
        String::from_utf8_lossy(&self.src[start..self.pos]).into_owned()
    }

    fn next_token(&mut self) -> Result<Option<Token>> {
        self.skip_trivia()?;
        let (line, col) = (self.line, self.col);
        let Some(c) = self.peek(0) else {
            return Ok(None);
        };
        let tok = if c == b'.'
            && self
                .peek(1)
                .is_some_and(|d| d.is_ascii_alphabetic() || d == b'_')
        {
            self.bump();
            Tok::Dot(self.take_while(|c| is_ident_char(c) || c == b':'))
        } else if is_ident_start(c) {
            self.bump();
            let mut s = String::from(c as char);
            s.push_str(&self.take_while(is_ident_char));
            if SPECIAL_REGS.contains(&s.as_str())
                && self.peek(0) == Some(b'.')
                && matches!(self.peek(1), Some(b'x' | b'y' | b'z'))
                && !self.peek(2).is_some_and(is_ident_char)
            {
                self.bump();
                if let Some(d) = self.bump() {
                    s.push('.');
                    s.push(d as char);
                }
            }
            Tok::Ident(s)
        } else if c.is_ascii_digit() {
            self.number(line, col)?
        } else if b",;:[](){}<>+-@!=|".contains(&c) {
            self.bump();
            Tok::Punct(c as char)
        } else {
            let shown = if c.is_ascii_graphic() {
                format!("`{}`", c as char)
            } else {
                format!("byte {c:#04x}")
            };
            return Err(self.err(line, col, format!("unexpected character {shown}")));
        };
        Ok(Some(Token { tok, line, col }))
    }

    fn number(&mut self, line: u32, col: u32) -> Result<Tok> {
        let word = self.take_while(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_');
        // Exponent sign: 1e-3 / 1.5E+2.
        let mut word = word;
        if (word.ends_with('e') || word.ends_with('E'))
            && !word.starts_with("0x")
            && !word.starts_with("0X")
            && matches!(self.peek(0), Some(b'+' | b'-'))
        {
            if let Some(s) = self.bump() {
                word.push(s as char);
            }
            word.push_str(&self.take_while(|c| c.is_ascii_digit()));
        }
        let bad = |msg: &str| Error::Parse {
            line,
            col,
            msg: format!("{msg} `{word}`"),
        };
        let lower = word.to_ascii_lowercase();
        if let Some(hex) = lower.strip_prefix("0f") {
            if hex.len() != 8 {
                return Err(bad("f32 hex literal needs 8 hex digits:"));
            }
            return u32::from_str_radix(hex, 16)
                .map(Tok::F32)
                .map_err(|_| bad("bad f32 hex literal"));
        }
        if let Some(hex) = lower.strip_prefix("0d") {
            if hex.len() != 16 {
                return Err(bad("f64 hex literal needs 16 hex digits:"));
            }
            return u64::from_str_radix(hex, 16)
                .map(Tok::F64)
                .map_err(|_| bad("bad f64 hex literal"));
        }
        let digits = lower.strip_suffix('u').unwrap_or(&lower);
        if let Some(hex) = digits.strip_prefix("0x") {
            return u64::from_str_radix(hex, 16)
                .map(|v| Tok::Int(i128::from(v)))
                .map_err(|_| bad("bad hex literal"));
        }
        if let Some(bin) = digits.strip_prefix("0b") {
            return u64::from_str_radix(bin, 2)
                .map(|v| Tok::Int(i128::from(v)))
                .map_err(|_| bad("bad binary literal"));
        }
        if digits.contains('.') || digits.contains('e') {
            return lower
                .parse::<f64>()
                .map(Tok::Float)
                .map_err(|_| bad("bad float literal"));
        }
        if digits.len() > 1 && digits.starts_with('0') {
            return u64::from_str_radix(&digits[1..], 8)
                .map(|v| Tok::Int(i128::from(v)))
                .map_err(|_| bad("bad octal literal"));
        }
        digits
            .parse::<u64>()
            .map(|v| Tok::Int(i128::from(v)))
            .map_err(|_| bad("bad integer literal"))
    }
}
