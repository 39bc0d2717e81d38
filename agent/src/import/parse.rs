//! keepalived.conf syntax: a tokenizer and a recursive block parser, as keepalived's own.
//!
//! - Statements are words up to the end of the line; a statement followed by `{` (on the same
//!   line or the next) owns the block up to the matching `}`. `name { a b }` on one line is a
//!   block holding the statement `a b`.
//! - `#` and `!` start a comment anywhere outside quotes.
//! - `"` and `'` quote: the quotes are removed and whitespace between them kept, so
//!   `abc" d "e` is the one word `abc d e`. The other quote character is plain text inside a
//!   quote. Inside quotes, backslash escapes work as keepalived's (`\n`, `\t`, `\\`, `\"`,
//!   `\nnn` octal, `\xXX` hex, `\C` = `C`). A quote does not continue on the next line.
//! - `include PATTERN` (and `includer`, `includem`, `includew`, `includeb`, `includea`) as the
//!   first word of a line is replaced by the matching files, in name order. A relative pattern
//!   is relative to the including file's directory; `*`, `?` and `[…]` match within one path
//!   component. A pattern without wildcards must name a file; a wildcard pattern may match
//!   nothing. Includes may appear anywhere, even inside a block (keepalived reads lines).
//!
//! Every word carries its file and line.

use std::path::{Path, PathBuf};

use super::ImportError;
use super::glob;

/// Where a word is: an index into [`Source::files`] and a 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Loc {
    pub(super) file: usize,
    pub(super) line: usize,
}

/// A word with the quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    pub(super) text: String,
    pub(super) loc: Loc,
}

/// `keyword args… [{ block }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stmt {
    /// Never empty: the keyword, then its arguments.
    pub(super) words: Vec<Word>,
    pub(super) block: Option<Vec<Stmt>>,
}

impl Stmt {
    pub(super) fn keyword(&self) -> &str {
        &self.words[0].text
    }

    pub(super) fn loc(&self) -> Loc {
        self.words[0].loc
    }

    pub(super) fn args(&self) -> &[Word] {
        &self.words[1..]
    }

    /// The statement as written (words joined by a space).
    pub(super) fn text(&self) -> String {
        join(&self.words)
    }

    /// The block's statements; a statement without a block has none.
    pub(super) fn children(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or(&[])
    }
}

pub(super) fn join(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A parsed configuration: its statements and the files they came from.
#[derive(Debug)]
pub(super) struct Source {
    /// Every file read, the top one first, as displayed in messages.
    pub(super) files: Vec<PathBuf>,
    pub(super) stmts: Vec<Stmt>,
    /// Wildcard includes that matched no file: `(where, pattern)`.
    pub(super) empty_includes: Vec<(Loc, String)>,
}

impl Source {
    /// `FILE:LINE`.
    pub(super) fn locate(&self, loc: Loc) -> String {
        format!("{}:{}", self.files[loc.file].display(), loc.line)
    }
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

/// Reads `path` and everything it includes.
pub(super) fn parse(path: &Path) -> Result<Source, ImportError> {
    let mut lexer = Lexer {
        files: Vec::new(),
        stack: Vec::new(),
        tokens: Vec::new(),
        empty_includes: Vec::new(),
    };
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    lexer.file(path, &text)?;
    let Lexer {
        files,
        tokens,
        empty_includes,
        ..
    } = lexer;
    let mut parser = Parser {
        tokens: tokens.into_iter().peekable(),
        files: &files,
    };
    let stmts = parser.block(None, 0)?;
    Ok(Source {
        files,
        stmts,
        empty_includes,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Eol,
}

struct Lexer {
    files: Vec<PathBuf>,
    /// The files being read, outermost first: canonical path and index in `files`.
    stack: Vec<(PathBuf, usize)>,
    tokens: Vec<(Tok, Loc)>,
    empty_includes: Vec<(Loc, String)>,
}

const INCLUDES: &[&str] = &[
    "include", "includer", "includem", "includew", "includeb", "includea",
];

impl Lexer {
    fn file(&mut self, path: &Path, text: &str) -> Result<(), ImportError> {
        let file = self.files.len();
        self.files.push(path.to_owned());
        // Canonical paths find cycles however the files are named; a path that cannot be
        // canonicalized was just read, so this only fails in a race: fall back to the name.
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        self.stack.push((canonical, file));
        for (i, line) in text.lines().enumerate() {
            let loc = Loc { file, line: i + 1 };
            let tokens = self.line(line, loc)?;
            match tokens.as_slice() {
                [(Tok::Word(kw), true), (Tok::Word(pattern), _), ..]
                    if INCLUDES.contains(&kw.as_str()) =>
                {
                    let pattern = pattern.clone();
                    self.include(path, &pattern, loc)?;
                    self.tokens
                        .extend(tokens.into_iter().skip(2).map(|(t, _)| (t, loc)));
                }
                [(Tok::Word(kw), true)] if INCLUDES.contains(&kw.as_str()) => {
                    return Err(ImportError::Syntax {
                        at: self.locate(loc),
                        message: format!("`{kw}` needs a file name or pattern"),
                    });
                }
                _ => self
                    .tokens
                    .extend(tokens.into_iter().map(|(t, _)| (t, loc))),
            }
            self.tokens.push((Tok::Eol, loc));
        }
        self.stack.pop();
        Ok(())
    }

    fn locate(&self, loc: Loc) -> String {
        format!("{}:{}", self.files[loc.file].display(), loc.line)
    }

    /// One line's tokens, each word with whether it was written without quotes.
    fn line(&self, line: &str, loc: Loc) -> Result<Vec<(Tok, bool)>, ImportError> {
        let mut out = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        let mut plain = true;
        let mut quote: Option<char> = None;
        let mut chars = line.chars().peekable();
        let end_word = |out: &mut Vec<(Tok, bool)>,
                        word: &mut String,
                        in_word: &mut bool,
                        plain: &mut bool| {
            if *in_word {
                out.push((Tok::Word(core::mem::take(word)), *plain));
            }
            *in_word = false;
            *plain = true;
        };
        while let Some(c) = chars.next() {
            if let Some(q) = quote {
                match c {
                    _ if c == q => quote = None,
                    '\\' => escape(&mut chars, &mut word),
                    _ => word.push(c),
                }
                continue;
            }
            match c {
                '#' | '!' => break,
                '{' | '}' => {
                    end_word(&mut out, &mut word, &mut in_word, &mut plain);
                    out.push((if c == '{' { Tok::Open } else { Tok::Close }, true));
                }
                '"' | '\'' => {
                    quote = Some(c);
                    in_word = true;
                    plain = false;
                }
                _ if c.is_whitespace() => end_word(&mut out, &mut word, &mut in_word, &mut plain),
                _ => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if let Some(q) = quote {
            return Err(ImportError::Syntax {
                at: self.locate(loc),
                message: format!("unterminated quote: the {q} is not closed on this line"),
            });
        }
        end_word(&mut out, &mut word, &mut in_word, &mut plain);
        Ok(out)
    }

    fn include(&mut self, including: &Path, pattern: &str, loc: Loc) -> Result<(), ImportError> {
        let dir = including.parent().unwrap_or_else(|| Path::new(""));
        let full = dir.join(pattern);
        let paths = if glob::has_wildcards(pattern) {
            let paths = glob::matches(&full);
            if paths.is_empty() {
                self.empty_includes.push((loc, pattern.to_owned()));
            }
            paths
        } else {
            vec![full]
        };
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| ImportError::Syntax {
                at: self.locate(loc),
                message: format!(
                    "include {pattern}: cannot read {}: {}",
                    path.display(),
                    if e.kind() == std::io::ErrorKind::NotFound {
                        "no such file".to_owned()
                    } else {
                        e.to_string()
                    }
                ),
            })?;
            let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
            if let Some(start) = self.stack.iter().position(|(p, _)| *p == canonical) {
                let mut chain: Vec<String> = self.stack[start..]
                    .iter()
                    .map(|(_, f)| self.files[*f].display().to_string())
                    .collect();
                chain.push(path.display().to_string());
                return Err(ImportError::Syntax {
                    at: self.locate(loc),
                    message: format!("include cycle: {}", chain.join(" -> ")),
                });
            }
            self.file(&path, &text)?;
        }
        Ok(())
    }
}

/// The character after a backslash inside quotes (keepalived's escapes, as the shell's).
fn escape(chars: &mut core::iter::Peekable<core::str::Chars<'_>>, word: &mut String) {
    let Some(c) = chars.next() else {
        word.push('\\');
        return;
    };
    let simple = match c {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'E' => Some('\x1b'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        _ => None,
    };
    if let Some(s) = simple {
        word.push(s);
        return;
    }
    let radix_digits = match c {
        '0'..='7' => Some((8, 2, c.to_digit(8).unwrap_or(0))),
        'x' => Some((16, 2, 0)),
        _ => None,
    };
    if let Some((radix, max, mut value)) = radix_digits {
        let mut n = 0;
        while n < max
            && let Some(d) = chars.peek().and_then(|d| d.to_digit(radix))
        {
            value = value * radix + d;
            chars.next();
            n += 1;
        }
        match char::from_u32(value) {
            Some(v) if c != 'x' || n > 0 => word.push(v),
            _ => word.push(c),
        }
        return;
    }
    if c == 'c'
        && let Some(&d) = chars.peek()
    {
        chars.next();
        word.push(char::from(u8::try_from(u32::from(d) & 0x1f).unwrap_or(0)));
        return;
    }
    word.push(c);
}

struct Parser<'f, I: Iterator<Item = (Tok, Loc)>> {
    tokens: core::iter::Peekable<I>,
    files: &'f [PathBuf],
}

impl<I: Iterator<Item = (Tok, Loc)>> Parser<'_, I> {
    fn locate(&self, loc: Loc) -> String {
        format!("{}:{}", self.files[loc.file].display(), loc.line)
    }

    /// Statements up to the `}` closing the block opened at `open` (or the end, at the top).
    fn block(&mut self, open: Option<Loc>, depth: usize) -> Result<Vec<Stmt>, ImportError> {
        let mut stmts: Vec<Stmt> = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        // Whether the last statement ended at a line end, so a `{` on the next line opens its
        // block.
        let mut last_open_to_block = false;
        loop {
            let Some((tok, loc)) = self.tokens.next() else {
                if let Some(open) = open {
                    return Err(ImportError::Syntax {
                        at: self.locate(open),
                        message: "unbalanced braces: this `{` is never closed".to_owned(),
                    });
                }
                flush(&mut stmts, &mut words);
                return Ok(stmts);
            };
            match tok {
                Tok::Word(text) => words.push(Word { text, loc }),
                Tok::Eol => {
                    if !words.is_empty() {
                        flush(&mut stmts, &mut words);
                        last_open_to_block = true;
                    }
                }
                Tok::Open => {
                    if depth >= MAX_DEPTH {
                        return Err(ImportError::Syntax {
                            at: self.locate(loc),
                            message: format!("blocks nested more than {MAX_DEPTH} deep"),
                        });
                    }
                    if !words.is_empty() {
                        let block = self.block(Some(loc), depth + 1)?;
                        stmts.push(Stmt {
                            words: core::mem::take(&mut words),
                            block: Some(block),
                        });
                        last_open_to_block = false;
                    } else if let (true, Some(last)) = (last_open_to_block, stmts.last_mut())
                        && last.block.is_none()
                    {
                        last.block = Some(self.block(Some(loc), depth + 1)?);
                        last_open_to_block = false;
                    } else {
                        return Err(ImportError::Syntax {
                            at: self.locate(loc),
                            message: "`{` without a keyword before it".to_owned(),
                        });
                    }
                }
                Tok::Close => {
                    if open.is_none() {
                        return Err(ImportError::Syntax {
                            at: self.locate(loc),
                            message: "unbalanced braces: this `}` closes no block".to_owned(),
                        });
                    }
                    flush(&mut stmts, &mut words);
                    return Ok(stmts);
                }
            }
        }
    }
}

fn flush(stmts: &mut Vec<Stmt>, words: &mut Vec<Word>) {
    if !words.is_empty() {
        stmts.push(Stmt {
            words: core::mem::take(words),
            block: None,
        });
    }
}
