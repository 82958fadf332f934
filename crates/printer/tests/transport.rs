//! Printing to a fake network printer (a TCP listener on 127.0.0.1 that collects what it is
//! sent, as a printer on port 9100 would) and to a device file, then decoding what arrived.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use printer::escpos::{self, Decoded};
use printer::transport::{PrintError, Printer, print, print_document};
use printer::{Align, Block, Document, Paper, Size, Style};

fn receipt() -> Document {
    let mut doc = Document::new(Paper::Mm80);
    doc.push(Block::OpenDrawer);
    doc.text(
        "Kassa Wien Mitte",
        Style {
            align: Align::Centre,
            bold: true,
            size: Size::Double,
        },
    );
    doc.row("Äpfel Gala", "3,11");
    doc.bold_row("SUMME", "3,11 €");
    doc.push(Block::Barcode("T2-000009".into()));
    doc.push(Block::Cut);
    doc
}

/// Accepts one connection and returns everything read until the client closes its side.
fn fake_printer() -> (String, thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    });
    (addr, handle)
}

#[test]
fn a_network_printer_receives_the_whole_receipt() {
    let (addr, printer) = fake_printer();
    let bytes = escpos::encode(&receipt()).unwrap();
    print(&Printer::tcp(addr), &bytes).unwrap();
    let received = printer.join().unwrap();
    assert_eq!(received, bytes);
    let decoded = escpos::decode(&received).unwrap();
    assert_eq!(decoded[0], Decoded::OpenDrawer);
    assert_eq!(
        decoded[1],
        Decoded::Text {
            text: "Kassa Wien Mitte".into(),
            style: Style {
                align: Align::Centre,
                bold: true,
                size: Size::Double
            }
        }
    );
    assert_eq!(
        decoded[2],
        Decoded::Text {
            text: format!("Äpfel Gala{}3,11", " ".repeat(48 - 14)),
            style: Style::PLAIN
        }
    );
    assert_eq!(
        decoded[4],
        Decoded::Barcode {
            data: "T2-000009".into()
        }
    );
    assert_eq!(decoded.last(), Some(&Decoded::Cut));
}

#[test]
fn a_large_job_arrives_complete() {
    // More than socket buffers hold at once, so the write has to wait for the reader.
    let mut doc = Document::new(Paper::Mm58);
    for i in 0..20_000 {
        doc.row(format!("Line {i}"), "1.00");
    }
    let bytes = escpos::encode(&doc).unwrap();
    assert!(bytes.len() > 500_000);
    let (addr, printer) = fake_printer();
    print(&Printer::tcp(addr), &bytes).unwrap();
    assert_eq!(printer.join().unwrap(), bytes);
}

#[test]
fn a_printer_that_is_not_there_is_a_connect_error() {
    // Bind and drop to find a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let printer = Printer::Tcp {
        addr: format!("127.0.0.1:{port}"),
        connect_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(2),
    };
    let error = print(&printer, b"\x1b@").unwrap_err();
    assert!(matches!(error, PrintError::Connect { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot connect to printer at `127.0.0.1:{port}`")),
        "{error}"
    );
}

#[test]
fn an_address_that_does_not_parse_is_a_resolve_error() {
    let error = print(&Printer::tcp("not a host:port:at all"), b"x").unwrap_err();
    assert!(matches!(error, PrintError::Resolve { .. }), "{error:?}");
}

#[test]
fn a_device_file_receives_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lp0");
    std::fs::write(&path, b"").unwrap();
    let bytes = escpos::encode(&receipt()).unwrap();
    print(&Printer::device(&path), &bytes).unwrap();
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written, bytes);
    assert_eq!(
        escpos::decode(&written).unwrap().last(),
        Some(&Decoded::Cut)
    );
}

#[test]
fn a_missing_device_is_an_open_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usb-lp9");
    let error = print(&Printer::device(&path), b"x").unwrap_err();
    assert!(matches!(error, PrintError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("usb-lp9"), "{error}");
    assert!(!path.exists());
}

#[test]
fn print_document_encodes_and_sends() {
    let (addr, printer) = fake_printer();
    print_document(&Printer::tcp(addr), &receipt()).unwrap();
    assert_eq!(printer.join().unwrap(), escpos::encode(&receipt()).unwrap());
}

#[test]
fn a_document_that_cannot_be_encoded_is_not_sent() {
    let mut doc = Document::new(Paper::Mm58);
    doc.push(Block::Barcode("Größe".into()));
    // The address is never used: encoding fails first.
    let error = print_document(&Printer::tcp("127.0.0.1:1"), &doc).unwrap_err();
    assert!(matches!(error, PrintError::Encode(_)), "{error:?}");
}
