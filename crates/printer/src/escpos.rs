//! ESC/POS: the encoder that turns a [`Document`] into printer bytes, and a decoder of exactly
//! that subset which tests (and a printer simulator) use to read the bytes back.
//!
//! Text is sent in code page WPC1252 (`ESC t 16`): it holds `€`, `£`, `¥`, German umlauts and
//! `ß`, and the accented letters of French and Italian. A character outside it, and any control
//! character, is printed as `?`, so no product name can smuggle a command to the printer.

use crate::document::{Align, Document, Line, Size, Style};

const ESC: u8 = 0x1B;
const GS: u8 = 0x1D;
const LF: u8 = 0x0A;

/// `ESC t n` value of WPC1252 on Epson-compatible printers.
pub const CODEPAGE_WPC1252: u8 = 16;

/// Bytes 0x80–0x9F of Windows-1252; 0xA0–0xFF equal Latin-1. `None` marks unassigned bytes.
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

/// The WPC1252 byte for `c`, or `?` when it has none or is a control character.
pub fn encode_char(c: char) -> u8 {
    let code = u32::from(c);
    if (0x20..0x7F).contains(&code) || (0xA0..=0xFF).contains(&code) {
        return u8::try_from(code).unwrap_or(b'?');
    }
    CP1252_HIGH
        .iter()
        .position(|m| *m == Some(c))
        .and_then(|i| u8::try_from(0x80 + i).ok())
        .unwrap_or(b'?')
}

/// The character a WPC1252 byte prints, `None` for control and unassigned bytes.
pub fn decode_byte(byte: u8) -> Option<char> {
    match byte {
        0x20..=0x7E | 0xA0..=0xFF => Some(char::from(byte)),
        0x80..=0x9F => CP1252_HIGH[usize::from(byte - 0x80)],
        _ => None,
    }
}

/// Text in WPC1252, unprintable characters replaced by `?`.
pub fn transcode(text: &str) -> Vec<u8> {
    text.chars().map(encode_char).collect()
}

/// Why a document cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// CODE128 (code set B) prints only printable ASCII.
    #[error("barcode data `{data}` must be 1 to 100 printable ASCII characters")]
    BarcodeData {
        /// The data.
        data: String,
    },
    /// The barcode is wider than the paper even at the narrowest module.
    #[error("barcode `{data}` is {modules} modules wide; the paper holds {dots} dots")]
    BarcodeTooWide {
        /// The data.
        data: String,
        /// Its width in modules.
        modules: usize,
        /// The paper's printable dots.
        dots: usize,
    },
    /// The data does not fit a QR symbol at error correction M, or the symbol not the paper.
    #[error("qr code data of {len} bytes does not fit a qr code on this paper")]
    QrTooLarge {
        /// Its length in bytes.
        len: usize,
    },
}

/// The largest QR module (`GS ( k` function 167), in dots.
const QR_MODULE_MAX: usize = 6;
/// Error correction level M (`GS ( k` function 169: 48 L, 49 M, 50 Q, 51 H).
const QR_ECC_M: u8 = 49;

/// The module size that fits the QR symbol for `data`, quiet zone included, on `dots`.
fn qr_module(data: &str, dots: usize) -> Option<u8> {
    let code =
        qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M).ok()?;
    // Four modules of quiet zone on each side.
    let module = (dots / (code.width() + 8)).min(QR_MODULE_MAX);
    u8::try_from(module).ok().filter(|m| *m >= 1)
}

/// Encodes `doc` as ESC/POS: initialise, select WPC1252, then each line with alignment,
/// emphasis and size set only when they change.
pub fn encode(doc: &Document) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![ESC, b'@', ESC, b't', CODEPAGE_WPC1252];
    let mut current = Style::PLAIN;
    let mut set = |out: &mut Vec<u8>, style: Style| {
        if style.align != current.align {
            out.extend([ESC, b'a', align_byte(style.align)]);
        }
        if style.bold != current.bold {
            out.extend([ESC, b'E', u8::from(style.bold)]);
        }
        if style.size != current.size {
            out.extend([GS, b'!', size_byte(style.size)]);
        }
        current = style;
    };
    let centre = Style {
        align: Align::Centre,
        ..Style::PLAIN
    };
    for line in doc.lines() {
        match line {
            Line::Text { text, style } => {
                set(&mut out, style);
                out.extend(transcode(text.trim_end()));
                out.push(LF);
            }
            Line::Barcode(data) => {
                let printable = !data.is_empty()
                    && data.len() <= 100
                    && data.bytes().all(|b| (0x20..0x7F).contains(&b));
                if !printable {
                    return Err(EncodeError::BarcodeData { data });
                }
                // Start, one symbol per character (and per `{` escape), check: 11 modules
                // each; stop: 13. Two dots per module when that fits the paper, else one.
                let symbols = data.len() + data.matches('{').count();
                let modules = 11 * (symbols + 2) + 13;
                let dots = doc.paper.dots();
                let module = if modules * 2 <= dots {
                    2
                } else if modules <= dots {
                    1
                } else {
                    return Err(EncodeError::BarcodeTooWide {
                        data,
                        modules,
                        dots,
                    });
                };
                set(&mut out, centre);
                // Height 80 dots, module width, human-readable text below.
                out.extend([GS, b'h', 80, GS, b'w', module, GS, b'H', 2]);
                let mut payload = vec![b'{', b'B'];
                for b in data.bytes() {
                    // `{` starts a code set switch in Epson's CODE128 data; `{{` is a literal.
                    if b == b'{' {
                        payload.push(b'{');
                    }
                    payload.push(b);
                }
                let n = u8::try_from(payload.len())
                    .map_err(|_| EncodeError::BarcodeData { data: data.clone() })?;
                out.extend([GS, b'k', 73, n]);
                out.extend(payload);
            }
            Line::Qr(data) => {
                let len = data.len();
                let module =
                    qr_module(&data, doc.paper.dots()).ok_or(EncodeError::QrTooLarge { len })?;
                set(&mut out, centre);
                // Model 2, module size, error correction M, store, print.
                out.extend([GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
                out.extend([GS, b'(', b'k', 3, 0, 49, 67, module]);
                out.extend([GS, b'(', b'k', 3, 0, 49, 69, QR_ECC_M]);
                let stored = len + 3;
                out.extend([
                    GS,
                    b'(',
                    b'k',
                    (stored % 256) as u8,
                    (stored / 256) as u8,
                    49,
                    80,
                    48,
                ]);
                out.extend(data.as_bytes());
                out.extend([GS, b'(', b'k', 3, 0, 49, 81, 48]);
            }
            Line::Feed(n) => out.extend([ESC, b'd', n]),
            // Partial cut after feeding to the cutter plus 3 motion units.
            Line::Cut => out.extend([GS, b'V', 66, 3]),
            // Pin 2, 50 ms on (25 × 2 ms), 500 ms off (250 × 2 ms).
            Line::OpenDrawer => out.extend([ESC, b'p', 0, 25, 250]),
        }
    }
    Ok(out)
}

fn align_byte(align: Align) -> u8 {
    match align {
        Align::Left => 0,
        Align::Centre => 1,
        Align::Right => 2,
    }
}

fn size_byte(size: Size) -> u8 {
    match size {
        Size::Normal => 0x00,
        Size::Double => 0x11,
    }
}

/// What a printer would do with the bytes, as read back by [`decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A printed line of text with the style in force.
    Text {
        /// The characters, decoded from the code page.
        text: String,
        /// Alignment, emphasis, size.
        style: Style,
    },
    /// A CODE128 barcode.
    Barcode {
        /// Its data (code set prefix and `{{` escapes removed).
        data: String,
    },
    /// A QR code printed from the symbol storage.
    Qr {
        /// Its data.
        data: String,
    },
    /// Empty lines fed.
    Feed(u8),
    /// A cut.
    Cut,
    /// A drawer pulse.
    OpenDrawer,
}

/// Why bytes are not the ESC/POS subset Kassa emits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A command or byte outside the subset.
    #[error("unknown command {bytes:02x?} at byte {offset}")]
    Unknown {
        /// Where.
        offset: usize,
        /// The command bytes seen.
        bytes: Vec<u8>,
    },
    /// The bytes end inside a command.
    #[error("truncated command at byte {offset}")]
    Truncated {
        /// Where the command started.
        offset: usize,
    },
    /// A parameter outside what the subset allows.
    #[error("bad parameter at byte {offset}: {reason}")]
    BadParameter {
        /// Where the command started.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// Text was sent without a line feed at the end.
    #[error("text without a final line feed: {text:?}")]
    UnterminatedLine {
        /// The text.
        text: String,
    },
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, start: usize) -> Result<&[u8], DecodeError> {
        let end = self.at + n;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(DecodeError::Truncated { offset: start })?;
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self, start: usize) -> Result<u8, DecodeError> {
        Ok(self.take(1, start)?[0])
    }
}

/// Reads ESC/POS bytes of the subset [`encode`] writes, as a printer would print them. Anything
/// else is an error naming the offset: a test that decodes cleanly knows every byte.
pub fn decode(bytes: &[u8]) -> Result<Vec<Decoded>, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let mut out = Vec::new();
    let mut style = Style::PLAIN;
    let mut codepage = 0_u8;
    let mut text = String::new();
    let mut qr_store: Option<String> = None;
    let bad = |offset, reason| DecodeError::BadParameter { offset, reason };
    while r.at < bytes.len() {
        let start = r.at;
        let b = r.byte(start)?;
        match b {
            LF => out.push(Decoded::Text {
                text: std::mem::take(&mut text),
                style,
            }),
            ESC => {
                let cmd = r.byte(start)?;
                match cmd {
                    b'@' => {
                        style = Style::PLAIN;
                        codepage = 0;
                    }
                    b't' => codepage = r.byte(start)?,
                    b'a' => {
                        style.align = match r.byte(start)? {
                            0 | b'0' => Align::Left,
                            1 | b'1' => Align::Centre,
                            2 | b'2' => Align::Right,
                            _ => return Err(bad(start, "alignment must be 0, 1 or 2")),
                        }
                    }
                    b'E' => style.bold = r.byte(start)? & 1 == 1,
                    b'd' => out.push(Decoded::Feed(r.byte(start)?)),
                    b'p' => {
                        let pin = r.take(3, start)?[0];
                        if !matches!(pin, 0 | 1 | b'0' | b'1') {
                            return Err(bad(start, "drawer pin must be 0 or 1"));
                        }
                        out.push(Decoded::OpenDrawer);
                    }
                    other => {
                        return Err(DecodeError::Unknown {
                            offset: start,
                            bytes: vec![ESC, other],
                        });
                    }
                }
            }
            GS => {
                let cmd = r.byte(start)?;
                match cmd {
                    b'!' => {
                        style.size = match r.byte(start)? {
                            0x00 => Size::Normal,
                            0x11 => Size::Double,
                            _ => return Err(bad(start, "only sizes 0x00 and 0x11 are used")),
                        }
                    }
                    b'h' | b'H' => {
                        r.byte(start)?;
                    }
                    b'w' => {
                        if !(1..=6).contains(&r.byte(start)?) {
                            return Err(bad(start, "barcode module width must be 1 to 6"));
                        }
                    }
                    b'k' => {
                        let m = r.byte(start)?;
                        if m != 73 {
                            return Err(bad(start, "only CODE128 (m = 73) is used"));
                        }
                        let n = usize::from(r.byte(start)?);
                        let payload = r.take(n, start)?;
                        let data = payload
                            .strip_prefix(b"{B")
                            .ok_or(bad(start, "CODE128 data must start with code set B"))?;
                        let mut decoded = String::new();
                        let mut i = 0;
                        while i < data.len() {
                            if data[i] == b'{' {
                                if data.get(i + 1) != Some(&b'{') {
                                    return Err(bad(start, "code set switch inside data"));
                                }
                                i += 1;
                            }
                            decoded.push(char::from(data[i]));
                            i += 1;
                        }
                        out.push(Decoded::Barcode { data: decoded });
                    }
                    b'V' => {
                        match r.byte(start)? {
                            0 | 1 | 48 | 49 => {}
                            65 | 66 => {
                                r.byte(start)?;
                            }
                            _ => return Err(bad(start, "unknown cut mode")),
                        }
                        out.push(Decoded::Cut);
                    }
                    b'(' => {
                        if r.byte(start)? != b'k' {
                            return Err(DecodeError::Unknown {
                                offset: start,
                                bytes: bytes[start..r.at].to_vec(),
                            });
                        }
                        let len = r.take(2, start)?;
                        let len = usize::from(len[0]) + 256 * usize::from(len[1]);
                        let body = r.take(len, start)?;
                        match body {
                            [49, 65, 50, 0] | [49, 67, _] | [49, 69, 48..=51] => {}
                            [49, 80, 48, data @ ..] => {
                                let data = String::from_utf8(data.to_vec())
                                    .map_err(|_| bad(start, "qr data is not utf-8"))?;
                                qr_store = Some(data);
                            }
                            [49, 81, 48] => {
                                let data = qr_store
                                    .take()
                                    .ok_or(bad(start, "qr print without stored data"))?;
                                out.push(Decoded::Qr { data });
                            }
                            _ => {
                                return Err(DecodeError::Unknown {
                                    offset: start,
                                    bytes: bytes[start..(start + 7).min(bytes.len())].to_vec(),
                                });
                            }
                        }
                    }
                    other => {
                        return Err(DecodeError::Unknown {
                            offset: start,
                            bytes: vec![GS, other],
                        });
                    }
                }
            }
            _ if b >= 0x20 => {
                let c = if b < 0x80 {
                    Some(char::from(b))
                } else if codepage == CODEPAGE_WPC1252 {
                    decode_byte(b)
                } else {
                    None
                };
                match c {
                    Some(c) => text.push(c),
                    None => {
                        return Err(bad(
                            start,
                            "byte has no character in the selected code page",
                        ));
                    }
                }
            }
            other => {
                return Err(DecodeError::Unknown {
                    offset: start,
                    bytes: vec![other],
                });
            }
        }
    }
    if !text.is_empty() {
        return Err(DecodeError::UnterminatedLine { text });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Block, Paper};

    #[test]
    fn euro_umlauts_and_sharp_s_have_their_wpc1252_bytes() {
        assert_eq!(
            transcode("€ äöüÄÖÜß £ ¥ é"),
            [
                0x80, b' ', 0xE4, 0xF6, 0xFC, 0xC4, 0xD6, 0xDC, 0xDF, b' ', 0xA3, b' ', 0xA5, b' ',
                0xE9
            ]
        );
    }

    #[test]
    fn unprintable_characters_become_question_marks() {
        // A control character in a product name must not reach the printer as a command.
        assert_eq!(transcode("a\x1bB\u{1d}\u{7f}€✓漢\u{9d}"), b"a?B??\x80???");
    }

    #[test]
    fn every_wpc1252_character_round_trips() {
        for byte in 0x20..=0xFF_u8 {
            if let Some(c) = decode_byte(byte) {
                assert_eq!(encode_char(c), byte, "{c:?}");
            }
        }
    }

    #[test]
    fn a_document_encodes_to_the_exact_command_bytes() {
        let mut doc = Document::new(Paper::Mm58);
        doc.push(Block::OpenDrawer);
        doc.text(
            "Käse",
            Style {
                align: Align::Centre,
                bold: true,
                size: Size::Double,
            },
        );
        doc.line("a{b");
        doc.push(Block::Barcode("R{1".into()));
        doc.push(Block::Qr("AB".into()));
        doc.push(Block::Feed(2));
        doc.push(Block::Cut);
        let bytes = encode(&doc).unwrap();
        let expected: Vec<u8> = [
            &[0x1B, b'@', 0x1B, b't', 16][..],
            &[0x1B, b'p', 0, 25, 250],
            &[0x1B, b'a', 1, 0x1B, b'E', 1, 0x1D, b'!', 0x11],
            &[b'K', 0xE4, b's', b'e', 0x0A],
            &[0x1B, b'a', 0, 0x1B, b'E', 0, 0x1D, b'!', 0],
            b"a{b\n",
            &[0x1B, b'a', 1],
            &[0x1D, b'h', 80, 0x1D, b'w', 2, 0x1D, b'H', 2],
            &[0x1D, b'k', 73, 6, b'{', b'B', b'R', b'{', b'{', b'1'],
            &[0x1D, b'(', b'k', 4, 0, 49, 65, 50, 0],
            &[0x1D, b'(', b'k', 3, 0, 49, 67, 6],
            &[0x1D, b'(', b'k', 3, 0, 49, 69, 49],
            &[0x1D, b'(', b'k', 5, 0, 49, 80, 48, b'A', b'B'],
            &[0x1D, b'(', b'k', 3, 0, 49, 81, 48],
            &[0x1B, b'd', 2],
            &[0x1D, b'V', 66, 3],
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(
            decode(&bytes).unwrap(),
            [
                Decoded::OpenDrawer,
                Decoded::Text {
                    text: "Käse".into(),
                    style: Style {
                        align: Align::Centre,
                        bold: true,
                        size: Size::Double
                    }
                },
                Decoded::Text {
                    text: "a{b".into(),
                    style: Style::PLAIN
                },
                Decoded::Barcode { data: "R{1".into() },
                Decoded::Qr { data: "AB".into() },
                Decoded::Feed(2),
                Decoded::Cut,
            ]
        );
    }

    #[test]
    fn barcodes_refuse_what_code128_b_cannot_print() {
        for data in ["", "Bärcode", "tab\there", &"9".repeat(101)] {
            let mut doc = Document::new(Paper::Mm80);
            doc.push(Block::Barcode(data.into()));
            assert!(
                matches!(encode(&doc), Err(EncodeError::BarcodeData { .. })),
                "{data:?}"
            );
        }
    }

    #[test]
    fn long_barcodes_narrow_their_modules_and_refuse_what_cannot_fit() {
        let module_width = |paper, data: &str| {
            let mut doc = Document::new(paper);
            doc.push(Block::Barcode(data.into()));
            encode(&doc).map(|bytes| {
                let at = bytes.windows(2).position(|w| w == [GS, b'w']).unwrap();
                bytes[at + 2]
            })
        };
        // 11 × (n + 2) + 13 modules: 9 characters are 134, 20 are 255, 31 are 376.
        assert_eq!(module_width(Paper::Mm58, "T1-000042"), Ok(2));
        assert_eq!(module_width(Paper::Mm58, &"1".repeat(20)), Ok(1));
        assert_eq!(module_width(Paper::Mm80, &"1".repeat(20)), Ok(2));
        assert_eq!(module_width(Paper::Mm58, &"1".repeat(31)), Ok(1));
        assert!(matches!(
            module_width(Paper::Mm58, &"1".repeat(32)),
            Err(EncodeError::BarcodeTooWide { .. })
        ));
    }

    #[test]
    fn qr_modules_shrink_to_fit_the_paper() {
        let module = |paper, len| qr_module(&"x".repeat(len), Paper::dots(paper));
        // Version 1 (21 modules + 8 quiet) takes the largest module.
        assert_eq!(module(Paper::Mm58, 5), Some(6));
        let width = |len| {
            qrcode::QrCode::with_error_correction_level("x".repeat(len), qrcode::EcLevel::M)
                .unwrap()
                .width()
        };
        // 300 bytes at M need version 13 (69 modules): 384 / 77 = 4, 576 / 77 = 7 → 6.
        assert_eq!(width(300), 69);
        assert_eq!(module(Paper::Mm58, 300), Some(4));
        assert_eq!(module(Paper::Mm80, 300), Some(6));
        // 2331 bytes, the most at M, need version 40 (177 modules): 384 / 185 = 2.
        assert_eq!(width(2331), 177);
        assert_eq!(module(Paper::Mm58, 2331), Some(2));
        let mut doc = Document::new(Paper::Mm58);
        doc.push(Block::Qr("x".repeat(2400)));
        assert_eq!(encode(&doc), Err(EncodeError::QrTooLarge { len: 2400 }));
    }

    #[test]
    fn long_qr_data_is_stored_with_a_two_byte_length() {
        let data = "x".repeat(300);
        let mut doc = Document::new(Paper::Mm80);
        doc.push(Block::Qr(data.clone()));
        let bytes = encode(&doc).unwrap();
        let store = [0x1D, b'(', b'k', 47, 1, 49, 80, 48];
        assert!(bytes.windows(8).any(|w| w == store));
        assert_eq!(decode(&bytes).unwrap(), [Decoded::Qr { data }]);
    }

    #[test]
    fn the_decoder_refuses_what_it_does_not_know() {
        // ESC M (font select) is not in the subset.
        assert_eq!(
            decode(&[0x1B, b'@', 0x1B, b'M', 1]),
            Err(DecodeError::Unknown {
                offset: 2,
                bytes: vec![0x1B, b'M']
            })
        );
        assert!(matches!(
            decode(&[0x1D, b'k', 73, 10, b'{', b'B']),
            Err(DecodeError::Truncated { offset: 0 })
        ));
        assert!(matches!(
            decode(b"no line feed"),
            Err(DecodeError::UnterminatedLine { .. })
        ));
        assert!(matches!(decode(&[0x07]), Err(DecodeError::Unknown { .. })));
        // A high byte before a code page is chosen prints something else than intended.
        assert!(matches!(
            decode(&[0x1B, b'@', 0x80, 0x0A]),
            Err(DecodeError::BadParameter { .. })
        ));
        assert!(matches!(
            decode(&[0x1D, b'(', b'k', 3, 0, 49, 81, 48]),
            Err(DecodeError::BadParameter { .. })
        ));
    }
}
