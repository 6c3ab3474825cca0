//! Where the CLI's results go. Writing through a locked handle instead of `println!` turns a
//! closed pipe (`weft claims token x.wasm | head -c1`) into an error instead of a panic.

use std::io::{self, Write};

/// Standard output, locked for the life of a command.
pub struct Out(io::StdoutLock<'static>);

impl Out {
    pub fn stdout() -> Self {
        Out(io::stdout().lock())
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
