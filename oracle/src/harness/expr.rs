//! Integer expressions over a plan's size parameters: buffer lengths (`m * k`), kernel
//! arguments (`w - 2`) and launch dimensions (`cdiv(n, 256)`).
//!
//! Grammar: integers, names, `+ - * / %`, unary `-`, parentheses and the functions `min(a, b)`,
//! `max(a, b)` and `cdiv(a, b)` (division rounding up). Arithmetic is checked `i64`: overflow and
//! division by zero are evaluation errors, never a wrapped value or a panic.

use std::fmt;

/// A parsed expression, with the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeExpr {
    text: String,
    node: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Int(i64),
    Name(String),
    Neg(Box<Node>),
    Bin(char, Box<Node>, Box<Node>),
    Call(Func, Box<Node>, Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Min,
    Max,
    Cdiv,
}

impl fmt::Display for SizeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl SizeExpr {
    /// A constant.
    pub fn int(v: i64) -> SizeExpr {
        SizeExpr {
            text: v.to_string(),
            node: Node::Int(v),
        }
    }

    /// Parses `text`; the error names the column (1-based) and what was expected.
    pub fn parse(text: &str) -> Result<SizeExpr, String> {
        let tokens = lex(text)?;
        let mut p = Parser { tokens, pos: 0 };
        let node = p.expr()?;
        if let Some((col, t)) = p.tokens.get(p.pos) {
            return Err(format!("unexpected `{t}` at column {col} in `{text}`"));
        }
        Ok(SizeExpr {
            text: text.trim().to_string(),
            node,
        })
    }

    /// The names the expression reads, in order of first use.
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        collect(&self.node, &mut out);
        out
    }

    /// Evaluates with `lookup` giving each name's value.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<i64>) -> Result<i64, String> {
        eval(&self.node, lookup).map_err(|e| format!("`{}`: {e}", self.text))
    }
}

fn collect<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
    match n {
        Node::Int(_) => {}
        Node::Name(s) => {
            if !out.contains(&s.as_str()) {
                out.push(s);
            }
        }
        Node::Neg(a) => collect(a, out),
        Node::Bin(_, a, b) | Node::Call(_, a, b) => {
            collect(a, out);
            collect(b, out);
        }
    }
}

fn eval(n: &Node, lookup: &dyn Fn(&str) -> Option<i64>) -> Result<i64, String> {
    let overflow = || "arithmetic overflow".to_string();
    Ok(match n {
        Node::Int(v) => *v,
        Node::Name(s) => lookup(s).ok_or_else(|| format!("unknown size `{s}`"))?,
        Node::Neg(a) => eval(a, lookup)?.checked_neg().ok_or_else(overflow)?,
        Node::Bin(op, a, b) => {
            let (x, y) = (eval(a, lookup)?, eval(b, lookup)?);
            if matches!(op, '/' | '%') && y == 0 {
                return Err("division by zero".into());
            }
            match op {
                '+' => x.checked_add(y),
                '-' => x.checked_sub(y),
                '*' => x.checked_mul(y),
                '/' => x.checked_div_euclid(y),
                _ => x.checked_rem_euclid(y),
            }
            .ok_or_else(overflow)?
        }
        Node::Call(f, a, b) => {
            let (x, y) = (eval(a, lookup)?, eval(b, lookup)?);
            match f {
                Func::Min => x.min(y),
                Func::Max => x.max(y),
                Func::Cdiv => {
                    if y <= 0 {
                        return Err("cdiv by a non-positive number".into());
                    }
                    x.checked_add(y - 1).ok_or_else(overflow)?.div_euclid(y)
                }
            }
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Int(i64),
    Name(String),
    Sym(char),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Int(v) => write!(f, "{v}"),
            Tok::Name(s) => f.write_str(s),
            Tok::Sym(c) => write!(f, "{c}"),
        }
    }
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let s: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let v = if let Some(hex) = s.strip_prefix("0x") {
                i64::from_str_radix(hex, 16)
            } else {
                s.parse()
            }
            .map_err(|_| format!("bad integer `{s}` at column {col} in `{text}`"))?;
            out.push((col, Tok::Int(v)));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((col, Tok::Name(chars[start..i].iter().collect())));
        } else if "+-*/%(),".contains(c) {
            out.push((col, Tok::Sym(c)));
            i += 1;
        } else {
            return Err(format!("unexpected `{c}` at column {col} in `{text}`"));
        }
    }
    if out.is_empty() {
        return Err("empty expression".into());
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    pos: usize,
}

impl Parser {
    fn peek_sym(&self) -> Option<char> {
        match self.tokens.get(self.pos) {
            Some((_, Tok::Sym(c))) => Some(*c),
            _ => None,
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.peek_sym() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{c}`")))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.tokens.get(self.pos) {
            Some((col, t)) => format!("expected {wanted} at column {col}, found `{t}`"),
            None => format!("expected {wanted} at the end"),
        }
    }

    fn expr(&mut self) -> Result<Node, String> {
        let mut lhs = self.term()?;
        while let Some(op @ ('+' | '-')) = self.peek_sym() {
            self.pos += 1;
            lhs = Node::Bin(op, Box::new(lhs), Box::new(self.term()?));
        }
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Node, String> {
        let mut lhs = self.unary()?;
        while let Some(op @ ('*' | '/' | '%')) = self.peek_sym() {
            self.pos += 1;
            lhs = Node::Bin(op, Box::new(lhs), Box::new(self.unary()?));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, String> {
        if self.peek_sym() == Some('-') {
            self.pos += 1;
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Node, String> {
        let Some((_, tok)) = self.tokens.get(self.pos).cloned() else {
            return Err(self.unexpected("a number, a name or `(`"));
        };
        match tok {
            Tok::Int(v) => {
                self.pos += 1;
                Ok(Node::Int(v))
            }
            Tok::Sym('(') => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(')')?;
                Ok(e)
            }
            Tok::Name(name) => {
                self.pos += 1;
                let func = match name.as_str() {
                    "min" => Func::Min,
                    "max" => Func::Max,
                    "cdiv" => Func::Cdiv,
                    _ => return Ok(Node::Name(name)),
                };
                self.expect('(')?;
                let a = self.expr()?;
                self.expect(',')?;
                let b = self.expr()?;
                self.expect(')')?;
                Ok(Node::Call(func, Box::new(a), Box::new(b)))
            }
            Tok::Sym(_) => Err(self.unexpected("a number, a name or `(`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &str) {
        let env = |s: &str| match s {
            "n" => Some(300),
            "m" => Some(7),
            "z" => Some(0),
            _ => None,
        };
        let got = SizeExpr::parse(text)
            .and_then(|e| e.eval(&env))
            .map_or_else(|e| format!("error: {e}"), |v| v.to_string());
        assert_eq!(got, expect, "{text}");
    }

    #[test]
    fn evaluates() {
        check("n", "300");
        check("(n + 255) / 256", "2");
        check("cdiv(n, 256)", "2");
        check("cdiv(z, 256)", "0");
        check("m * n - 2 * m", "2086");
        check("-m + 1", "-6");
        check("max(1, min(n, 4))", "4");
        check("n % 7", "6");
        check("0x10 * 2", "32");
    }

    #[test]
    fn reports_errors() {
        check("n +", "error: expected a number, a name or `(` at the end");
        check("n $ 2", "error: unexpected `$` at column 3 in `n $ 2`");
        check("(n", "error: expected `)` at the end");
        check("n m", "error: unexpected `m` at column 3 in `n m`");
        check("q * 2", "error: `q * 2`: unknown size `q`");
        check("n / z", "error: `n / z`: division by zero");
        check(
            "9223372036854775807 + n",
            "error: `9223372036854775807 + n`: arithmetic overflow",
        );
        check("", "error: empty expression");
        check("min(n)", "error: expected `,` at column 6, found `)`");
    }
}
