//! Properties of layout and encoding over arbitrary text: no line is wider than the paper, and
//! the ESC/POS bytes decode to exactly the laid-out lines (after code page replacement).
#![allow(clippy::unwrap_used)]

use printer::document::{Line, room};
use printer::escpos::{self, Decoded};
use printer::{Align, Block, Document, Paper, Size, Style};
use proptest::prelude::*;

fn style() -> impl Strategy<Value = Style> {
    (0..3_u8, any::<bool>(), any::<bool>()).prop_map(|(a, bold, double)| Style {
        align: match a {
            0 => Align::Left,
            1 => Align::Centre,
            _ => Align::Right,
        },
        bold,
        size: if double { Size::Double } else { Size::Normal },
    })
}

fn block() -> impl Strategy<Value = Block> {
    // Words, spaces, umlauts, the euro sign, control characters and characters no code page
    // has.
    let text = "[a-zA-Z0-9äöüÄÖÜß€ .,:'\\-\\x1b\\x07漢✓]{0,120}";
    prop_oneof![
        (text, style()).prop_map(|(text, style)| Block::Text { text, style }),
        (text, "[0-9.,€ -]{0,60}", any::<bool>()).prop_map(|(left, right, bold)| Block::Row {
            left,
            right,
            bold
        }),
        Just(Block::Separator),
        "[A-Z0-9-]{1,20}".prop_map(Block::Barcode),
        "[ -~]{1,40}".prop_map(Block::Qr),
        (0..4_u8).prop_map(Block::Feed),
        Just(Block::Cut),
        Just(Block::OpenDrawer),
    ]
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| escpos::decode_byte(escpos::encode_char(c)).unwrap())
        .collect()
}

proptest! {
    #[test]
    fn layout_fits_the_paper_and_bytes_decode_to_the_lines(
        blocks in proptest::collection::vec(block(), 0..30),
        wide in any::<bool>(),
    ) {
        let paper = if wide { Paper::Mm80 } else { Paper::Mm58 };
        let doc = Document { paper, blocks };
        let lines = doc.lines();
        let mut expected = Vec::new();
        for line in &lines {
            match line {
                Line::Text { text, style } => {
                    prop_assert!(text.chars().count() <= room(paper.columns(), style.size), "{text:?}");
                    expected.push(Decoded::Text { text: printable(text.trim_end()), style: *style });
                }
                Line::Barcode(data) => expected.push(Decoded::Barcode { data: data.clone() }),
                Line::Qr(data) => expected.push(Decoded::Qr { data: data.clone() }),
                Line::Feed(n) => expected.push(Decoded::Feed(*n)),
                Line::Cut => expected.push(Decoded::Cut),
                Line::OpenDrawer => expected.push(Decoded::OpenDrawer),
            }
        }
        let decoded = escpos::decode(&escpos::encode(&doc).unwrap()).unwrap();
        prop_assert_eq!(decoded, expected);
        for line in printer::render_text(&doc).lines() {
            prop_assert!(line.chars().count() <= paper.columns(), "{line:?}");
        }
    }
}
