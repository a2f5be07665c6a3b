//! PTX text front end: lexer, parser and syntax tree for the documented subset (see
//! `docs/ORACLE.md`, "Accepted subset").
//!
//! This module only parses; it never executes and never decides what an instruction means. It
//! must never panic on any input, and every error it returns names a line and column.

mod ast;
mod lexer;
mod parser;

pub use ast::{
    AddrBase, Entry, Guard, Instruction, Literal, Operand, Param, PtxModule, RegDecl, ScalarType,
    SharedDecl, Statement,
};
pub use parser::parse_module;
