//! Sending bytes to a receipt printer: raw TCP (port 9100, "JetDirect") with timeouts, or a
//! device file (`/dev/usb/lp0`, a serial port already set up). Blocking std IO only: the store
//! node calls [`print()`] from a blocking task.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::document::Document;
use crate::escpos::{self, EncodeError};

/// The raw printing port of network receipt printers.
pub const DEFAULT_PORT: u16 = 9100;

/// Where a printer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Printer {
    /// A network printer, raw TCP.
    Tcp {
        /// `host:port`, or a host alone for port 9100.
        addr: String,
        /// How long to wait for the connection.
        connect_timeout: Duration,
        /// How long one write may block (a printer out of paper stops reading).
        write_timeout: Duration,
    },
    /// A device file, written and closed.
    Device {
        /// Its path.
        path: PathBuf,
    },
}

impl Printer {
    /// A network printer at `addr` with a 3 s connect and 10 s write timeout.
    pub fn tcp(addr: impl Into<String>) -> Self {
        Printer::Tcp {
            addr: addr.into(),
            connect_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(10),
        }
    }

    /// A device file.
    pub fn device(path: impl Into<PathBuf>) -> Self {
        Printer::Device { path: path.into() }
    }
}

/// Why printing failed.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// The document has content ESC/POS cannot carry (see [`EncodeError`]).
    #[error("cannot encode the document: {0}")]
    Encode(#[from] EncodeError),
    /// The address is not `host[:port]` or does not resolve.
    #[error("printer address `{addr}` does not resolve: {source}")]
    Resolve {
        /// The address.
        addr: String,
        /// The cause.
        source: io::Error,
    },
    /// No connection within the timeout, or refused.
    #[error("cannot connect to printer at `{addr}`: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The cause.
        source: io::Error,
    },
    /// The device file cannot be opened.
    #[error("cannot open printer device `{path}`: {source}")]
    Open {
        /// The path.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// Writing stopped part-way (timeout, connection reset, device gone).
    #[error("printer `{target}` stopped taking data: {source}")]
    Write {
        /// The address or path.
        target: String,
        /// The cause.
        source: io::Error,
    },
}

fn with_port(addr: &str) -> String {
    let has_port = match addr.rsplit_once(':') {
        // `[v6]:port` or `host:port`; a bare IPv6 address has several colons and no brackets.
        Some((host, port)) => {
            port.chars().all(|c| c.is_ascii_digit()) && (host.ends_with(']') || !host.contains(':'))
        }
        None => false,
    };
    if has_port {
        addr.to_owned()
    } else if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]:{DEFAULT_PORT}")
    } else {
        format!("{addr}:{DEFAULT_PORT}")
    }
}

fn print_tcp(
    addr: &str,
    connect_timeout: Duration,
    write_timeout: Duration,
    bytes: &[u8],
) -> Result<(), PrintError> {
    let target = with_port(addr.trim());
    let addrs: Vec<_> = target
        .to_socket_addrs()
        .map_err(|source| PrintError::Resolve {
            addr: target.clone(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for candidate in addrs {
        match TcpStream::connect_timeout(&candidate, connect_timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or_else(|| PrintError::Connect {
        addr: target.clone(),
        source: last,
    })?;
    let write_error = |source| PrintError::Write {
        target: target.clone(),
        source,
    };
    stream
        .set_write_timeout(Some(write_timeout))
        .map_err(write_error)?;
    stream.write_all(bytes).map_err(write_error)?;
    stream.flush().map_err(write_error)?;
    // Tell the printer the job is complete; a printer that already closed is not an error.
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// Sends `bytes` to `printer`, all or an error saying where and why.
pub fn print(printer: &Printer, bytes: &[u8]) -> Result<(), PrintError> {
    match printer {
        Printer::Tcp {
            addr,
            connect_timeout,
            write_timeout,
        } => print_tcp(addr, *connect_timeout, *write_timeout, bytes),
        Printer::Device { path } => {
            let shown = path.display().to_string();
            // No `create`: a missing device is an error, not a new regular file.
            let mut file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|source| PrintError::Open {
                    path: shown.clone(),
                    source,
                })?;
            let write_error = |source| PrintError::Write {
                target: shown.clone(),
                source,
            };
            file.write_all(bytes).map_err(write_error)?;
            file.flush().map_err(write_error)?;
            Ok(())
        }
    }
}

/// Encodes `doc` as ESC/POS and sends it to `printer`.
pub fn print_document(printer: &Printer, doc: &Document) -> Result<(), PrintError> {
    let bytes = escpos::encode(doc)?;
    print(printer, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_without_port_gets_9100() {
        assert_eq!(with_port("10.0.0.7"), "10.0.0.7:9100");
        assert_eq!(with_port("printer.local:9101"), "printer.local:9101");
        assert_eq!(with_port("[::1]:9100"), "[::1]:9100");
        assert_eq!(with_port("::1"), "[::1]:9100");
        assert_eq!(with_port("[::1]"), "[::1]:9100");
    }
}
