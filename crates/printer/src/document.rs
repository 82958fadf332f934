//! The receipt document model: blocks that say what to print, and the layout that turns them
//! into lines of at most the paper's width, which every renderer (ESC/POS, text, HTML) shares.

/// Receipt paper, which fixes the characters per line in font A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Paper {
    /// 58 mm paper: 32 characters.
    Mm58,
    /// 80 mm paper: 48 characters.
    Mm80,
}

impl Paper {
    /// Printable dots per line at 203 dpi (what a barcode may span).
    pub fn dots(self) -> usize {
        match self {
            Paper::Mm58 => 384,
            Paper::Mm80 => 576,
        }
    }

    /// Characters per line in font A at normal size.
    pub fn columns(self) -> usize {
        match self {
            Paper::Mm58 => 32,
            Paper::Mm80 => 48,
        }
    }
}

/// Horizontal alignment of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Align {
    /// Flush left.
    #[default]
    Left,
    /// Centred.
    Centre,
    /// Flush right.
    Right,
}

/// Character size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Size {
    /// Normal.
    #[default]
    Normal,
    /// Double width and double height: half as many characters fit on a line.
    Double,
}

/// How a line of text is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Style {
    /// Alignment.
    pub align: Align,
    /// Emphasised.
    pub bold: bool,
    /// Size.
    pub size: Size,
}

impl Style {
    /// Left, regular, normal size.
    pub const PLAIN: Style = Style {
        align: Align::Left,
        bold: false,
        size: Size::Normal,
    };
}

/// One element of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Text, wrapped at word boundaries to the paper's width.
    Text {
        /// The text; a leading indent is kept on every wrapped line.
        text: String,
        /// How it is printed.
        style: Style,
    },
    /// `label ........ amount`: the label wraps, the amount stays right-aligned on the first
    /// line.
    Row {
        /// Left column.
        left: String,
        /// Right column.
        right: String,
        /// Emphasised.
        bold: bool,
    },
    /// A full-width rule.
    Separator,
    /// A CODE128 barcode (code set B: printable ASCII), with its text printed below.
    Barcode(String),
    /// A QR code (model 2).
    Qr(String),
    /// Feed this many empty lines.
    Feed(u8),
    /// Feed to the cutter and cut partially.
    Cut,
    /// Pulse the cash drawer.
    OpenDrawer,
}

/// A document to print: blocks on a paper width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The paper.
    pub paper: Paper,
    /// What to print, in order.
    pub blocks: Vec<Block>,
}

impl Document {
    /// An empty document.
    pub fn new(paper: Paper) -> Self {
        Document {
            paper,
            blocks: Vec::new(),
        }
    }

    /// Adds a block.
    pub fn push(&mut self, block: Block) -> &mut Self {
        self.blocks.push(block);
        self
    }

    /// Adds a line of text in `style`.
    pub fn text(&mut self, text: impl Into<String>, style: Style) -> &mut Self {
        self.push(Block::Text {
            text: text.into(),
            style,
        })
    }

    /// Adds a plain left-aligned line.
    pub fn line(&mut self, text: impl Into<String>) -> &mut Self {
        self.text(text, Style::PLAIN)
    }

    /// Adds a two-column row.
    pub fn row(&mut self, left: impl Into<String>, right: impl Into<String>) -> &mut Self {
        self.push(Block::Row {
            left: left.into(),
            right: right.into(),
            bold: false,
        })
    }

    /// Adds an emphasised two-column row.
    pub fn bold_row(&mut self, left: impl Into<String>, right: impl Into<String>) -> &mut Self {
        self.push(Block::Row {
            left: left.into(),
            right: right.into(),
            bold: true,
        })
    }

    /// Adds a rule.
    pub fn separator(&mut self) -> &mut Self {
        self.push(Block::Separator)
    }

    /// The document laid out into lines no wider than the paper.
    pub fn lines(&self) -> Vec<Line> {
        layout(self)
    }
}

/// A laid-out line: what renderers print, one per paper line (or graphic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Text that fits the line at its size, without alignment padding.
    Text {
        /// The characters.
        text: String,
        /// How they are printed.
        style: Style,
    },
    /// A CODE128 barcode.
    Barcode(String),
    /// A QR code.
    Qr(String),
    /// Empty lines.
    Feed(u8),
    /// A cut.
    Cut,
    /// A drawer pulse.
    OpenDrawer,
}

/// How many characters fit on a line of `columns` at `size`.
pub fn room(columns: usize, size: Size) -> usize {
    match size {
        Size::Normal => columns,
        Size::Double => columns / 2,
    }
}

fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// Wraps `text` greedily at spaces into lines of at most `width` characters; words longer than
/// a line are split, and a text that fits is returned as it is. A leading indent is repeated on continuation lines when it leaves room.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    if char_len(text) <= width {
        // A line that fits keeps its spacing (tables are laid out with spaces).
        return vec![text.to_owned()];
    }
    let trimmed = text.trim_start_matches(' ');
    let indent_len = char_len(text) - char_len(trimmed);
    let indent = if indent_len * 2 <= width {
        " ".repeat(indent_len)
    } else {
        String::new()
    };
    let mut lines = Vec::new();
    let mut current = indent.clone();
    let mut has_word = false;
    for word in trimmed.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = char_len(&current);
            let gap = usize::from(has_word);
            if used + gap + word.len() <= width {
                if has_word {
                    current.push(' ');
                }
                current.extend(word.iter());
                has_word = true;
                break;
            }
            if has_word {
                lines.push(std::mem::replace(&mut current, indent.clone()));
                has_word = false;
                continue;
            }
            // The word alone is longer than a line: split it.
            let fit = width.saturating_sub(used).max(1);
            let rest = word.split_off(fit.min(word.len()));
            current.extend(word.iter());
            lines.push(std::mem::replace(&mut current, indent.clone()));
            word = rest;
            if word.is_empty() {
                break;
            }
        }
    }
    if has_word || lines.is_empty() {
        lines.push(current);
    }
    lines
}

fn layout(doc: &Document) -> Vec<Line> {
    let columns = doc.paper.columns();
    let mut out = Vec::new();
    for block in &doc.blocks {
        match block {
            Block::Text { text, style } => {
                for part in text.split('\n') {
                    for line in wrap(part, room(columns, style.size)) {
                        out.push(Line::Text {
                            text: line,
                            style: *style,
                        });
                    }
                }
            }
            Block::Row { left, right, bold } => {
                let style = Style {
                    bold: *bold,
                    ..Style::PLAIN
                };
                let right: String = right.chars().take(columns).collect();
                let right_len = char_len(&right);
                if right_len + 2 > columns {
                    for line in wrap(left, columns) {
                        out.push(Line::Text { text: line, style });
                    }
                    out.push(Line::Text {
                        text: right,
                        style: Style {
                            align: Align::Right,
                            ..style
                        },
                    });
                    continue;
                }
                let wrapped = wrap(left, columns - right_len - 1);
                for (i, line) in wrapped.into_iter().enumerate() {
                    let text = if i == 0 {
                        let pad = columns - char_len(&line) - right_len;
                        format!("{line}{}{right}", " ".repeat(pad))
                    } else {
                        line
                    };
                    out.push(Line::Text { text, style });
                }
            }
            Block::Separator => out.push(Line::Text {
                text: "-".repeat(columns),
                style: Style::PLAIN,
            }),
            Block::Barcode(data) => out.push(Line::Barcode(data.clone())),
            Block::Qr(data) => out.push(Line::Qr(data.clone())),
            Block::Feed(n) => out.push(Line::Feed(*n)),
            Block::Cut => out.push(Line::Cut),
            Block::OpenDrawer => out.push(Line::OpenDrawer),
        }
    }
    out
}

/// Pads a laid-out line to its position on paper, as plain text: centred and right-aligned
/// text is indented; double-size characters count twice.
pub fn positioned(text: &str, style: Style, columns: usize) -> String {
    let scale = match style.size {
        Size::Normal => 1,
        Size::Double => 2,
    };
    let visual = char_len(text) * scale;
    let free = columns.saturating_sub(visual);
    let pad = match style.align {
        Align::Left => 0,
        Align::Centre => free / 2,
        Align::Right => free,
    };
    format!("{}{text}", " ".repeat(pad))
}

/// The document as plain text, for logs and previews: one paper line per text line, barcodes
/// and QR codes as their data in brackets; cut and drawer pulse leave no trace.
pub fn render_text(doc: &Document) -> String {
    let columns = doc.paper.columns();
    let mut out = String::new();
    for line in doc.lines() {
        match line {
            Line::Text { text, style } => {
                out.push_str(positioned(&text, style, columns).trim_end());
                out.push('\n');
            }
            Line::Barcode(data) => push_wrapped(&mut out, &format!("|{data}|"), columns),
            Line::Qr(data) => push_wrapped(&mut out, &format!("[QR {data}]"), columns),
            Line::Feed(n) => {
                for _ in 0..n {
                    out.push('\n');
                }
            }
            Line::Cut | Line::OpenDrawer => {}
        }
    }
    out
}

fn push_wrapped(out: &mut String, text: &str, columns: usize) {
    for line in wrap(text, columns) {
        out.push_str(positioned(&line, centred(), columns).trim_end());
        out.push('\n');
    }
}

fn centred() -> Style {
    Style {
        align: Align::Centre,
        ..Style::PLAIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_at_spaces_and_splits_long_words() {
        assert_eq!(
            wrap("Bio Vollkornbrot mit Sonnenblumenkernen", 16),
            ["Bio Vollkornbrot", "mit", "Sonnenblumenkern", "en"]
        );
        assert_eq!(
            wrap("  indented words here", 10),
            ["  indented", "  words", "  here"]
        );
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(wrap("abcdefghij", 3), ["abc", "def", "ghi", "j"]);
    }

    #[test]
    fn no_laid_out_line_exceeds_the_paper() {
        let mut doc = Document::new(Paper::Mm58);
        doc.row(
            "An extraordinarily long product name that needs three lines",
            "1'234'567.89",
        );
        doc.row("x", "a right column far too long to share the line at all");
        doc.text(
            "DOUBLE SIZE HEADLINE WRAPS EARLY",
            Style {
                size: Size::Double,
                ..Style::PLAIN
            },
        );
        doc.line(
            "Grüße aus Österreich — mit Umlauten und einem sehr langen Wort: Donaudampfschifffahrt",
        );
        for line in doc.lines() {
            if let Line::Text { text, style } = line {
                assert!(
                    text.chars().count() <= room(32, style.size),
                    "too wide: {text:?}"
                );
            }
        }
        let text = render_text(&doc);
        for line in text.lines() {
            assert!(line.chars().count() <= 32, "too wide: {line:?}");
        }
        let first = text.lines().next().unwrap();
        assert!(first.ends_with(" 1'234'567.89"), "{first:?}");
        assert!(first.starts_with("An extraordinarily"), "{first:?}");
    }
}
