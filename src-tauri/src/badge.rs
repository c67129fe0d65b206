//! The balance drawn into the tray icon (opt-in, `AlertSettings::number_in_icon`), for
//! trays that show only icons: KDE and Windows draw no title, and Linux's AppIndicator
//! shows no tooltip either. A 3×5 bitmap font of the few characters the number uses
//! (`0`–`9`, `k`, `M`), scaled to the icon, white on a dark box along the icon's bottom, so
//! it reads on light and dark panels alike. No font file or text-rendering dependency.

/// Each glyph's five rows, top first; bit 2 is the left column.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b001, 0b001, 0b001],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        'k' => [0b100, 0b101, 0b110, 0b101, 0b101],
        'M' => [0b101, 0b111, 0b111, 0b101, 0b101],
        _ => return None,
    })
}

const INK: [u8; 4] = [255, 255, 255, 255];
const BOX: [u8; 4] = [20, 20, 20, 230];

/// The scale and origin of `text` in a `width`×`height` icon: as large as fits the width
/// (one unit of margin each side) and half the height, centred, at the bottom.
fn layout(text: &str, width: u32, height: u32) -> Option<(u32, u32, u32)> {
    let n = text.chars().count() as u32;
    if n == 0 {
        return None;
    }
    let units = n * 4 - 1; // 3 columns a glyph, 1 between
    let scale = ((width.saturating_sub(2)) / (units + 2))
        .min(height / 2 / 7)
        .max(1);
    let w = units * scale;
    let x = width.saturating_sub(w) / 2;
    let y = height.saturating_sub(6 * scale);
    Some((scale, x, y))
}

fn put(rgba: &mut [u8], width: u32, x: u32, y: u32, px: [u8; 4]) {
    let i = ((y * width + x) * 4) as usize;
    if let Some(dst) = rgba.get_mut(i..i + 4) {
        dst.copy_from_slice(&px);
    }
}

/// Draws `text` into an RGBA image (`width`×`height`, 4 bytes a pixel). Characters
/// outside the font are skipped (the caller sends only what `format::icon_number` makes).
pub fn draw(rgba: &mut [u8], width: u32, height: u32, text: &str) {
    let Some((scale, x0, y0)) = layout(text, width, height) else {
        return;
    };
    let n = text.chars().count() as u32;
    // The box: one unit around the text, clipped to the icon.
    let (bx0, by0) = (x0.saturating_sub(scale), y0.saturating_sub(scale));
    let bx1 = (x0 + (n * 4 - 1) * scale + scale).min(width);
    let by1 = (y0 + 5 * scale + scale).min(height);
    for y in by0..by1 {
        for x in bx0..bx1 {
            put(rgba, width, x, y, BOX);
        }
    }
    for (i, c) in text.chars().enumerate() {
        let Some(rows) = glyph(c) else { continue };
        let gx = x0 + i as u32 * 4 * scale;
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..3u32 {
                if bits & (0b100 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        put(
                            rgba,
                            width,
                            gx + col * scale + dx,
                            y0 + r as u32 * scale + dy,
                            INK,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lit(rgba: &[u8]) -> usize {
        rgba.chunks(4).filter(|p| *p == INK).count()
    }

    /// "505" on the 64-px icon: scale 4, every lit bit of the three glyphs is a 4×4 block
    /// (11 + 12 + 11 bits), and the gap between glyphs is box, not ink.
    #[test]
    fn the_number_is_drawn_bit_for_bit() {
        let (w, h) = (64u32, 64u32);
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        draw(&mut rgba, w, h, "505");
        assert_eq!(layout("505", w, h), Some((4, 10, 40)));
        assert_eq!(lit(&rgba), (11 + 12 + 11) * 16);
        let at = |x: u32, y: u32| {
            let i = ((y * w + x) * 4) as usize;
            [rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]]
        };
        assert_eq!(at(10, 40), INK, "the 5's top-left");
        assert_eq!(at(10, 44), INK, "the 5's second row, left");
        assert_eq!(
            at(14, 44),
            BOX,
            "the 5's second row is lit only on the left"
        );
        assert_eq!(at(23, 42), BOX, "between the glyphs");
        assert_eq!(at(26, 40), INK, "the 0's top-left");
        assert_eq!(at(31, 46), BOX, "the 0's hollow middle");
        assert_eq!(at(2, 2), [0, 0, 0, 0], "the icon above is untouched");
        // Four characters still fit the width.
        let mut wide = vec![0u8; (w * h * 4) as usize];
        draw(&mut wide, w, h, "999k");
        assert_eq!(layout("999k", w, h), Some((3, 9, 46)));
        assert_eq!(lit(&wide), (12 + 12 + 12 + 9) * 9);
        assert!(lit(&wide) > 0);
    }

    /// Drawn on the real 32-px and 64-px tray icons, the number never writes outside the
    /// image, whatever its length.
    #[test]
    fn any_number_fits_any_icon() {
        for (w, h) in [(16u32, 16u32), (22, 22), (32, 32), (64, 64)] {
            for text in ["0", "7", "42", "505", "999k", "999M"] {
                let mut rgba = vec![0u8; (w * h * 4) as usize];
                draw(&mut rgba, w, h, text);
                assert_eq!(rgba.len(), (w * h * 4) as usize);
                assert!(lit(&rgba) > 0, "{text} on {w}×{h}");
            }
        }
    }
}
