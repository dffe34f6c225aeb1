//! Charts drawn by the server as SVG: a line chart, a histogram and a
//! horizontal bar chart. Pure functions of their input, so the same figures
//! always give the same bytes; every label is escaped, and every chart
//! carries a `<title>` and a `<desc>` for screen readers.

use std::fmt::Write as _;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;
const BAR_ROW: f64 = 26.0;
const LABEL_WIDTH: f64 = 180.0;
/// Longest label drawn before it is cut, in characters.
const MAX_LABEL_CHARS: usize = 28;
/// Points on the x axis that get a label, at most.
const MAX_X_LABELS: usize = 8;

/// Escapes text for SVG (XML) content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn short(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// A round axis maximum at or above `max`: 1, 2 or 5 times a power of ten.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|v| *v >= max).unwrap_or(10.0 * magnitude)
}

fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{}", v.round() as i64) } else { format!("{v:.1}") }
}

fn open_svg(out: &mut String, id: &str, title: &str, desc: &str, height: f64) {
    let id = escape(id);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-labelledby="{id}-title {id}-desc" font-family="sans-serif" font-size="11"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(title),
        escape(desc)
    );
}

fn y_axis(out: &mut String, max: f64, unit: &str) {
    let plot_h = HEIGHT - TOP - BOTTOM;
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            number(v),
            escape(unit)
        );
    }
}

/// One value per x position (`None` leaves a gap), drawn as a line with dots.
/// `unit` follows each axis value (`h`, ``).
pub fn line_chart(id: &str, title: &str, points: &[(String, Option<f64>)], unit: &str) -> String {
    let values: Vec<f64> = points.iter().filter_map(|p| p.1).collect();
    let desc = if values.is_empty() {
        "No data in this period.".to_string()
    } else {
        format!(
            "{} points from {} to {}; highest {}{unit}.",
            points.len(),
            points.first().map_or("", |p| p.0.as_str()),
            points.last().map_or("", |p| p.0.as_str()),
            number(values.iter().copied().fold(0.0, f64::max))
        )
    };
    let mut out = String::new();
    open_svg(&mut out, id, title, &desc, HEIGHT);
    let max = nice_max(values.iter().copied().fold(0.0, f64::max));
    y_axis(&mut out, max, unit);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = if points.len() > 1 { plot_w / (points.len() - 1) as f64 } else { 0.0 };
    let x_of = |i: usize| if points.len() > 1 { LEFT + step * i as f64 } else { LEFT + plot_w / 2.0 };
    let y_of = |v: f64| TOP + plot_h - plot_h * (v / max);
    let mut path = String::new();
    let mut pen_down = false;
    for (i, (_, v)) in points.iter().enumerate() {
        match v {
            Some(v) => {
                let _ = write!(path, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x_of(i), y_of(*v));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(out, r##"<path d="{}" fill="none" stroke="#2563eb" stroke-width="2"/>"##, path.trim_end());
    }
    for (i, (label, v)) in points.iter().enumerate() {
        if let Some(v) = v {
            let _ = write!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#2563eb"><title>{}: {}{}</title></circle>"##,
                x_of(i),
                y_of(*v),
                escape(label),
                number(*v),
                escape(unit)
            );
        }
    }
    let every = points.len().div_ceil(MAX_X_LABELS).max(1);
    for (i, (label, _)) in points.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            x_of(i),
            HEIGHT - BOTTOM + 16.0,
            escape(&short(label))
        );
    }
    out.push_str("</svg>");
    out
}

/// Vertical bars of counts, one per bucket label.
pub fn histogram(id: &str, title: &str, buckets: &[(String, u64)]) -> String {
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    let desc = if total == 0 {
        "No data in this period.".to_string()
    } else {
        format!("{total} values in {} buckets.", buckets.len())
    };
    let mut out = String::new();
    open_svg(&mut out, id, title, &desc, HEIGHT);
    let max = nice_max(buckets.iter().map(|b| b.1 as f64).fold(0.0, f64::max));
    y_axis(&mut out, max, "");
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = if buckets.is_empty() { plot_w } else { plot_w / buckets.len() as f64 };
    let every = buckets.len().div_ceil(MAX_X_LABELS).max(1);
    for (i, (label, count)) in buckets.iter().enumerate() {
        let h = plot_h * (*count as f64 / max);
        let x = LEFT + slot * i as f64;
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#2563eb"><title>{}: {count}</title></rect>"##,
            x + 1.0,
            TOP + plot_h - h,
            (slot - 2.0).max(1.0),
            escape(label)
        );
        if i % every == 0 {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
                x + slot / 2.0,
                HEIGHT - BOTTOM + 16.0,
                escape(&short(label))
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars, one row per label, each with its value's text.
pub fn bar_chart(id: &str, title: &str, bars: &[(String, f64, String)]) -> String {
    let height = TOP + BOTTOM / 2.0 + BAR_ROW * bars.len().max(1) as f64;
    let desc = match bars.first() {
        None => "No data in this period.".to_string(),
        Some((label, _, text)) => format!("{} bars; the longest is {label} at {text}.", bars.len()),
    };
    let mut out = String::new();
    open_svg(&mut out, id, title, &desc, height);
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let plot_w = WIDTH - LABEL_WIDTH - RIGHT - 80.0;
    for (i, (label, value, text)) in bars.iter().enumerate() {
        let y = TOP + BAR_ROW * i as f64;
        let w = if max > 0.0 { plot_w * (value / max) } else { 0.0 };
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#222">{}</text><rect x="{LABEL_WIDTH}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="#f59e0b"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" fill="#555">{}</text>"##,
            LABEL_WIDTH - 8.0,
            y + BAR_ROW / 2.0 + 4.0,
            escape(&short(label)),
            y + 4.0,
            BAR_ROW - 8.0,
            escape(label),
            escape(text),
            LABEL_WIDTH + w + 6.0,
            y + BAR_ROW / 2.0 + 4.0,
            escape(text)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> Vec<(String, Option<f64>)> {
        vec![("2026-03-02".into(), Some(3.0)), ("2026-03-09".into(), None), ("2026-03-16".into(), Some(7.0))]
    }

    #[test]
    fn labels_are_escaped_everywhere() {
        let evil = r#"<script>alert("x")</script> & 'co'"#;
        for svg in [
            line_chart("a", evil, &[(evil.to_string(), Some(1.0))], "h"),
            histogram("b", evil, &[(evil.to_string(), 2)]),
            bar_chart("c", evil, &[(evil.to_string(), 1.0, evil.to_string())]),
        ] {
            assert!(!svg.contains("<script>"), "{svg}");
            assert!(!svg.contains("\"x\""), "{svg}");
            assert!(svg.contains("&lt;script&gt;"), "{svg}");
            assert!(svg.contains("&amp; &#39;co&#39;"), "{svg}");
        }
        assert_eq!(escape("a\u{0}b\"c"), "ab&quot;c");
    }

    #[test]
    fn charts_carry_a_title_and_description_for_screen_readers() {
        let svg = line_chart("throughput", "Completed per week", &points(), "");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains(r#"role="img" aria-labelledby="throughput-title throughput-desc""#));
        assert!(svg.contains(r#"<title id="throughput-title">Completed per week</title>"#));
        assert!(svg.contains("3 points from 2026-03-02 to 2026-03-16; highest 7."));
        assert!(svg.ends_with("</svg>"));
        assert!(bar_chart("w", "Waiting", &[]).contains("No data in this period."));
    }

    #[test]
    fn the_same_figures_draw_the_same_bytes() {
        assert_eq!(line_chart("a", "t", &points(), "h"), line_chart("a", "t", &points(), "h"));
        let bars = vec![("ship".to_string(), 5.0, "5h".to_string()), ("request".to_string(), 1.0, "1h".to_string())];
        assert_eq!(bar_chart("b", "t", &bars), bar_chart("b", "t", &bars));
    }

    #[test]
    fn a_gap_in_a_line_lifts_the_pen_and_values_scale_to_a_round_axis() {
        let svg = line_chart("a", "t", &points(), "h");
        // Axis up to 10: 3 sits at 30% and 7 at 70% of the 184-pixel plot.
        assert!(svg.contains(r#"d="M56.0,144.8 M624.0,71.2""#), "{svg}");
        assert!(svg.contains(">10h</text>"), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn bars_are_proportional_to_their_values() {
        let bars = vec![("ship".to_string(), 4.0, "4h".to_string()), ("request".to_string(), 1.0, "1h".to_string())];
        let svg = bar_chart("b", "t", &bars);
        assert!(svg.contains(r#"width="364.0""#), "{svg}");
        assert!(svg.contains(r#"width="91.0""#), "{svg}");
        let hist = histogram("h", "t", &[("0h".into(), 1), ("1h".into(), 0), ("2h".into(), 2)]);
        assert_eq!(hist.matches("<rect").count(), 3);
        assert!(hist.contains("3 values in 3 buckets."));
    }

    #[test]
    fn round_axis_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(13.0), 20.0);
        assert_eq!(nice_max(450.0), 500.0);
        assert_eq!(nice_max(1.0), 1.0);
    }
}
