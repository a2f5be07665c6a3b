//! Recursive-descent parser from tokens to [`PtxModule`].
//!
//! It checks syntax only (the shape of directives, declarations and instructions); meaning is
//! given by the interpreter's decoder. Every error names a line and column. It must never panic
//! on any input and never accept a construct it would then drop.

use super::ast::*;
use super::lexer::{Tok, Token, lex};
use crate::error::{Error, Result};

/// Parses PTX text into a module.
pub fn parse_module(src: &str) -> Result<PtxModule> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0 };
    p.module()
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|t| &t.tok)
    }

    fn here(&self) -> (u32, u32) {
        match self.toks.get(self.pos).or(self.toks.last()) {
            Some(t) => (t.line, t.col),
            None => (1, 1),
        }
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T> {
        let (line, col) = self.here();
        let msg = match self.peek() {
            Some(t) => format!("{}, found {}", msg.into(), describe(t)),
            None => format!("{}, found end of input", msg.into()),
        };
        Err(Error::Parse { line, col, msg })
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, c: char) -> Result<()> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            self.err(format!("expected `{c}`"))
        }
    }

    fn eat_dot(&mut self, name: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Dot(d)) if d == name) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self, what: &str) -> Result<String> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.err(format!("expected {what}")),
        }
    }

    fn uint(&mut self, what: &str) -> Result<u64> {
        match self.peek() {
            Some(Tok::Int(v)) if (0..=i128::from(u64::MAX)).contains(v) => {
                let v = *v as u64;
                self.pos += 1;
                Ok(v)
            }
            _ => self.err(format!("expected {what}")),
        }
    }

    fn ty(&mut self) -> Result<ScalarType> {
        match self.peek() {
            Some(Tok::Dot(d)) => match ScalarType::from_name(d) {
                Some(t) => {
                    self.pos += 1;
                    Ok(t)
                }
                None => self.err("expected a type"),
            },
            _ => self.err("expected a type"),
        }
    }

    fn module(&mut self) -> Result<PtxModule> {
        let mut m = PtxModule {
            version: None,
            target: Vec::new(),
            address_size: None,
            entries: Vec::new(),
        };
        while let Some(t) = self.peek().cloned() {
            match t {
                Tok::Dot(d) => match d.as_str() {
                    "version" => {
                        self.pos += 1;
                        m.version = Some(match self.next() {
                            Some(Tok::Float(v)) => format!("{v:?}"),
                            Some(Tok::Int(v)) => format!("{v}"),
                            _ => {
                                self.pos -= 1;
                                return self.err("expected a version number");
                            }
                        });
                    }
                    "target" => {
                        self.pos += 1;
                        m.target.push(self.ident("a target name")?);
                        while self.eat_punct(',') {
                            m.target.push(self.ident("a target name")?);
                        }
                    }
                    "address_size" => {
                        self.pos += 1;
                        let n = self.uint("an address size")?;
                        if n != 64 {
                            self.pos -= 1;
                            return self.err("only `.address_size 64` is supported");
                        }
                        m.address_size = Some(64);
                    }
                    "visible" | "entry" => m.entries.push(self.entry()?),
                    _ => {
                        return self
                            .err("expected `.version`, `.target`, `.address_size` or `.entry`");
                    }
                },
                _ => return self.err("expected a module-level directive"),
            }
        }
        Ok(m)
    }

    fn entry(&mut self) -> Result<Entry> {
        let visible = self.eat_dot("visible");
        let (line, _) = self.here();
        if !self.eat_dot("entry") {
            return self.err("expected `.entry`");
        }
        let name = self.ident("a kernel name")?;
        let mut params = Vec::new();
        if self.eat_punct('(') && !self.eat_punct(')') {
            loop {
                params.push(self.param()?);
                if self.eat_punct(')') {
                    break;
                }
                self.expect_punct(',')?;
            }
        }
        // Performance directives between the signature and the body. `.reqntid` is kept: a
        // launch with another block shape is refused, as the driver refuses it.
        let mut reqntid = None;
        while let Some(Tok::Dot(d)) = self.peek() {
            let d = d.clone();
            if !matches!(
                d.as_str(),
                "maxntid" | "reqntid" | "minnctapersm" | "maxnreg"
            ) {
                break;
            }
            self.pos += 1;
            let mut dims = vec![self.uint("a number")?];
            while self.eat_punct(',') {
                dims.push(self.uint("a number")?);
            }
            if d == "reqntid" {
                if dims.len() > 3 {
                    return self.err("`.reqntid` takes at most three dimensions");
                }
                let mut block = [1u32; 3];
                for (b, v) in block.iter_mut().zip(&dims) {
                    *b = u32::try_from(*v).unwrap_or(u32::MAX);
                }
                reqntid = Some(block);
            }
        }
        self.expect_punct('{')?;
        let mut e = Entry {
            name,
            visible,
            params,
            regs: Vec::new(),
            shared: Vec::new(),
            body: Vec::new(),
            reqntid,
            line,
        };
        let mut depth = 0u32;
        loop {
            match self.peek().cloned() {
                None => return self.err("expected `}` closing the kernel body"),
                Some(Tok::Punct('}')) => {
                    self.pos += 1;
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                Some(Tok::Punct('{')) => {
                    self.pos += 1;
                    depth += 1;
                }
                Some(Tok::Dot(d)) if d == "reg" => self.reg_decl(&mut e.regs)?,
                Some(Tok::Dot(d)) if d == "shared" => e.shared.push(self.shared_decl()?),
                Some(Tok::Dot(_)) => {
                    return self.err("expected `.reg`, `.shared`, a label or an instruction");
                }
                Some(Tok::Ident(name)) if self.peek_at(1) == Some(&Tok::Punct(':')) => {
                    let (line, _) = self.here();
                    self.pos += 2;
                    e.body.push(Statement::Label { name, line });
                }
                Some(_) => e.body.push(Statement::Instr(self.instruction()?)),
            }
        }
        Ok(e)
    }

    fn param(&mut self) -> Result<Param> {
        let (line, _) = self.here();
        if !self.eat_dot("param") {
            return self.err("expected `.param`");
        }
        let mut align = None;
        if self.eat_dot("align") {
            align = Some(self.uint("an alignment")? as u32);
        }
        let ty = self.ty()?;
        // `.ptr .global .align N` attributes.
        if self.eat_dot("ptr") {
            let _ = self.eat_dot("global")
                || self.eat_dot("shared")
                || self.eat_dot("const")
                || self.eat_dot("local");
            if self.eat_dot("align") {
                self.uint("an alignment")?;
            }
        }
        let name = self.ident("a parameter name")?;
        if self.peek() == Some(&Tok::Punct('[')) {
            return self.err("array parameters are not supported");
        }
        Ok(Param {
            name,
            ty,
            align,
            line,
        })
    }

    fn reg_decl(&mut self, out: &mut Vec<RegDecl>) -> Result<()> {
        let (line, _) = self.here();
        self.pos += 1; // .reg
        let ty = self.ty()?;
        if ty == ScalarType::F16 {
            return self.err("`.f16` registers are not supported");
        }
        loop {
            let name = self.ident("a register name")?;
            if !name.starts_with('%') {
                self.pos -= 1;
                return self.err("register names start with `%`");
            }
            let mut count = None;
            if self.eat_punct('<') {
                let n = self.uint("a register count")?;
                if n == 0 || n > 1 << 20 {
                    self.pos -= 1;
                    return self.err("register count must be in 1..=1048576");
                }
                count = Some(n as u32);
                self.expect_punct('>')?;
            }
            out.push(RegDecl {
                ty,
                name,
                count,
                line,
            });
            if !self.eat_punct(',') {
                break;
            }
        }
        self.expect_punct(';')
    }

    fn shared_decl(&mut self) -> Result<SharedDecl> {
        let (line, _) = self.here();
        self.pos += 1; // .shared
        let mut align = None;
        if self.eat_dot("align") {
            let a = self.uint("an alignment")?;
            if !a.is_power_of_two() || a > 4096 {
                self.pos -= 1;
                return self.err("alignment must be a power of two up to 4096");
            }
            align = Some(a as u32);
        }
        let ty = self.ty()?;
        if ty == ScalarType::Pred {
            return self.err("`.pred` is not a memory type");
        }
        let name = self.ident("a variable name")?;
        let mut len = 1u64;
        if self.eat_punct('[') {
            len = self.uint("an array length")?;
            if len > 1 << 20 {
                self.pos -= 1;
                return self.err("shared array longer than 1048576 elements");
            }
            self.expect_punct(']')?;
        }
        if self.peek() == Some(&Tok::Punct('=')) {
            return self.err("initializers are not allowed on `.shared` variables");
        }
        self.expect_punct(';')?;
        Ok(SharedDecl {
            name,
            ty,
            align: align.unwrap_or(ty.bytes()),
            len,
            line,
        })
    }

    fn instruction(&mut self) -> Result<Instruction> {
        let guard = if self.eat_punct('@') {
            let negated = self.eat_punct('!');
            Some(Guard {
                negated,
                reg: self.ident("a predicate register")?,
            })
        } else {
            None
        };
        let (line, col) = self.here();
        let opcode = self.ident("an instruction")?;
        if opcode.starts_with('%') {
            self.pos -= 1;
            return self.err("expected an instruction");
        }
        let mut modifiers = Vec::new();
        while let Some(Tok::Dot(d)) = self.peek() {
            modifiers.push(d.clone());
            self.pos += 1;
        }
        let mut operands = Vec::new();
        if !self.eat_punct(';') {
            loop {
                operands.push(self.operand()?);
                if self.eat_punct(';') {
                    break;
                }
                self.expect_punct(',')?;
            }
        }
        Ok(Instruction {
            line,
            col,
            guard,
            opcode,
            modifiers,
            operands,
        })
    }

    fn literal(&mut self) -> Result<Literal> {
        let neg = self.eat_punct('-');
        let lit = match self.next() {
            Some(Tok::Int(v)) => Literal::Int(if neg { -v } else { v }),
            Some(Tok::Float(v)) => Literal::Float(if neg { -v } else { v }),
            Some(Tok::F32(b)) => Literal::F32Bits(if neg { b ^ 0x8000_0000 } else { b }),
            Some(Tok::F64(b)) => Literal::F64Bits(if neg { b ^ (1 << 63) } else { b }),
            Some(_) => {
                self.pos -= 1;
                return self.err("expected a literal");
            }
            None => return self.err("expected a literal"),
        };
        Ok(lit)
    }

    fn operand(&mut self) -> Result<Operand> {
        match self.peek().cloned() {
            Some(Tok::Ident(s)) => {
                self.pos += 1;
                Ok(if s.starts_with('%') {
                    Operand::Reg(s)
                } else {
                    Operand::Symbol(s)
                })
            }
            Some(Tok::Punct('!')) => {
                self.pos += 1;
                Ok(Operand::NotReg(self.ident("a predicate register")?))
            }
            Some(Tok::Punct('[')) => {
                self.pos += 1;
                let mut base = None;
                let mut offset = 0i64;
                match self.peek().cloned() {
                    Some(Tok::Ident(s)) => {
                        self.pos += 1;
                        base = Some(if s.starts_with('%') {
                            AddrBase::Reg(s)
                        } else {
                            AddrBase::Symbol(s)
                        });
                        let plus = self.eat_punct('+');
                        if plus || self.peek() == Some(&Tok::Punct('-')) {
                            offset = self.offset()?;
                        }
                    }
                    _ => offset = self.offset()?,
                }
                self.expect_punct(']')?;
                Ok(Operand::Addr { base, offset })
            }
            Some(_) => Ok(Operand::Imm(self.literal()?)),
            None => self.err("expected an operand"),
        }
    }

    fn offset(&mut self) -> Result<i64> {
        match self.literal()? {
            Literal::Int(v) => match i64::try_from(v) {
                Ok(v) => Ok(v),
                Err(_) => self.err("address offset out of range"),
            },
            _ => self.err("expected an integer address offset"),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Dot(s) => format!("`.{s}`"),
        Tok::Int(v) => format!("`{v}`"),
        Tok::F32(b) => format!("`0f{b:08X}`"),
        Tok::F64(b) => format!("`0d{b:016X}`"),
        Tok::Float(v) => format!("`{v}`"),
        Tok::Punct(c) => format!("`{c}`"),
    }
}
