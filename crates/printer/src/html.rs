//! The document as an HTML fragment for the till screen's receipt preview: the same laid-out
//! lines as on paper, escaped, in a monospace block; QR codes as inline SVG.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::document::{Align, Document, Line, Size};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A QR code as an inline `<svg>` element (no XML declaration), or `None` when the data does
/// not fit a QR symbol.
pub fn qr_svg(data: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(128, 128)
        .build();
    let start = image.find("<svg")?;
    Some(image[start..].to_owned())
}

/// The document as a `<div class="kassa-receipt">` fragment, one `<div>` per paper line. The
/// inline styles make it readable without a stylesheet; the classes (`left`, `centre`,
/// `right`, `bold`, `double`, `barcode`, `qr`, `feed`, `cut`) let the till screen restyle it.
pub fn render_html(doc: &Document) -> String {
    let columns = doc.paper.columns();
    let mut out = format!(
        "<div class=\"kassa-receipt\" style=\"font-family:monospace;white-space:pre;width:{columns}ch\">\n"
    );
    for line in doc.lines() {
        match line {
            Line::Text { text, style } => {
                let (align, css) = match style.align {
                    Align::Left => ("left", "left"),
                    Align::Centre => ("centre", "center"),
                    Align::Right => ("right", "right"),
                };
                let mut classes = vec![align];
                let mut styles = vec![format!("text-align:{css}")];
                if style.bold {
                    classes.push("bold");
                    styles.push("font-weight:bold".into());
                }
                if style.size == Size::Double {
                    classes.push("double");
                    styles.push("font-size:200%".into());
                }
                let text = text.trim_end();
                let body = if text.is_empty() { " " } else { text };
                out.push_str(&format!(
                    "<div class=\"{}\" style=\"{}\">{}</div>\n",
                    classes.join(" "),
                    styles.join(";"),
                    escape(body)
                ));
            }
            Line::Barcode(data) => out.push_str(&format!(
                "<div class=\"barcode\" style=\"text-align:center\">{}</div>\n",
                escape(&data)
            )),
            Line::Qr(data) => {
                let image = qr_svg(&data).unwrap_or_else(|| escape(&data));
                out.push_str(&format!(
                    "<div class=\"qr\" style=\"text-align:center\" title=\"{}\">{image}</div>\n",
                    escape(&data)
                ));
            }
            Line::Feed(n) => {
                for _ in 0..n {
                    out.push_str("<div class=\"feed\"> </div>\n");
                }
            }
            Line::Cut => out.push_str("<hr class=\"cut\">\n"),
            Line::OpenDrawer => {}
        }
    }
    out.push_str("</div>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Block, Paper, Style};

    #[test]
    fn text_is_escaped_and_styled() {
        let mut doc = Document::new(Paper::Mm58);
        doc.text(
            "<b>Tom & Jerry's \"Café\"</b>",
            Style {
                align: Align::Centre,
                bold: true,
                size: Size::Normal,
            },
        );
        doc.push(Block::Barcode("T1-<1>".into()));
        doc.push(Block::Cut);
        let html = render_html(&doc);
        assert!(html.contains(
            "<div class=\"centre bold\" style=\"text-align:center;font-weight:bold\">&lt;b&gt;Tom &amp; Jerry&#39;s &quot;Café&quot;&lt;/b&gt;</div>"
        ), "{html}");
        assert!(html.contains(">T1-&lt;1&gt;</div>"), "{html}");
        assert!(html.contains("<hr class=\"cut\">"));
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn qr_codes_render_as_inline_svg() {
        let mut doc = Document::new(Paper::Mm80);
        doc.push(Block::Qr("T1-000042".into()));
        let html = render_html(&doc);
        assert!(html.contains("<div class=\"qr\""), "{html}");
        assert!(
            html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{html}"
        );
        assert!(
            !html.contains("<?xml"),
            "an XML declaration is not valid inside HTML"
        );
        assert!(qr_svg(&"x".repeat(5000)).is_none());
    }
}
