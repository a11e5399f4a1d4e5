//! Survival charts, drawn with plotters' SVG backend: the fraction of trials (eval's zoo bugs)
//! or of mutants (`mutants`) still undetected against time on a log scale, one step line per
//! group, steered solid and baseline dashed, with a legend beside the plot.

use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// One line of the chart.
pub struct Line {
    /// Lines with the same key share a colour (eval: bug × engine, steered and baseline).
    pub key: String,
    /// Dashed (a baseline) or solid.
    pub dashed: bool,
    /// Its name in the legend.
    pub label: String,
    /// The survival curve: `(t, fraction still undetected after t)`, in increasing `t`.
    pub survival: Vec<(f64, f64)>,
    /// Where the line ends (the budget).
    pub cap_seconds: f64,
}

/// The shortest time on the axis: detections faster than this are drawn at it.
const T_MIN: f64 = 1e-3;
const PLOT_WIDTH: u32 = 700;
const LEGEND_WIDTH: u32 = 420;
const LEGEND_ROW: i32 = 18;

/// Series colours, one per bug × engine (its steered and baseline lines share it).
const PALETTE: [RGBColor; 12] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x39, 0x3b, 0x79),
    RGBColor(0x63, 0x79, 0x39),
];

/// The chart of `lines` as SVG text, titled `title`, the y axis named `y_label`.
pub fn survival(lines: &[Line], title: &str, y_label: &str) -> Result<String, String> {
    let t_max = lines
        .iter()
        .map(|g| g.cap_seconds)
        .fold(1.0, f64::max)
        .max(T_MIN * 10.0);
    let height = 500.max(60 + lines.len() as u32 * LEGEND_ROW as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PLOT_WIDTH + LEGEND_WIDTH, height))
            .into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (plot, legend) = root.split_horizontally(PLOT_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((T_MIN * 0.99..t_max * 1.01).log_scale(), 0.0..1.0)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc("time (wall clock of the trial process, log scale)")
            .y_desc(y_label)
            .x_label_formatter(&|t| time_label(*t))
            .y_labels(6)
            .y_label_formatter(&|f| format!("{:.0}%", f * 100.0))
            .light_line_style(WHITE)
            .draw()
            .map_err(draw_error)?;
        for (row, (colour, line)) in in_legend_order(lines).into_iter().enumerate() {
            let style = PALETTE[colour % PALETTE.len()].stroke_width(2);
            let points = steps(line);
            let y = 30 + row as i32 * LEGEND_ROW;
            let key = vec![(10, y), (38, y)];
            if !line.dashed {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(draw_error)?;
                legend
                    .draw(&PathElement::new(key, style))
                    .map_err(draw_error)?;
            } else {
                chart
                    .draw_series(DashedLineSeries::new(points, 6, 4, style))
                    .map_err(draw_error)?;
                legend
                    .draw(&DashedPathElement::new(key, 6, 4, style))
                    .map_err(draw_error)?;
            }
            legend
                .draw(&Text::new(
                    line.label.as_str(),
                    (44, y - 6),
                    ("sans-serif", 12),
                ))
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    if !svg.ends_with('\n') {
        svg.push('\n');
    }
    Ok(svg)
}

/// The lines with their colour, in order of first appearance of their key, each key's solid
/// line right above its dashed one.
fn in_legend_order(lines: &[Line]) -> Vec<(usize, &Line)> {
    let mut keys: Vec<&str> = Vec::new();
    let mut series: Vec<(usize, &Line)> = lines
        .iter()
        .map(|line| {
            let colour = keys.iter().position(|&k| k == line.key).unwrap_or_else(|| {
                keys.push(&line.key);
                keys.len() - 1
            });
            (colour, line)
        })
        .collect();
    series.sort_by_key(|&(colour, line)| (colour, line.dashed));
    series
}

/// The step function of a survival curve: flat until each detection, then down, flat again
/// to the cap.
fn steps(line: &Line) -> Vec<(f64, f64)> {
    let at = |t: f64| t.clamp(T_MIN, line.cap_seconds.max(T_MIN));
    let mut points = vec![(T_MIN, 1.0)];
    let mut fraction = 1.0;
    for &(t, after) in &line.survival {
        points.push((at(t), fraction));
        points.push((at(t), after));
        fraction = after;
    }
    points.push((at(line.cap_seconds), fraction));
    points
}

/// `1 ms`, `10 ms`, `100 ms`, `1 s`, `10 s`, ... (the axis' ticks are decades).
fn time_label(t: f64) -> String {
    if t < 1.0 {
        format!("{:.0} ms", t * 1e3)
    } else {
        format!("{t:.0} s")
    }
}

fn draw_error(e: impl std::fmt::Display) -> String {
    format!("drawing the chart: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(key: &str, dashed: bool, survival: Vec<(f64, f64)>) -> Line {
        Line {
            key: key.to_string(),
            dashed,
            label: format!("{key} {}", if dashed { "baseline" } else { "steered" }),
            survival,
            cap_seconds: 10.0,
        }
    }

    fn lines() -> Vec<Line> {
        vec![
            line("stale-lru", false, vec![(0.01, 0.5), (0.03, 0.0)]),
            line("stale-lru", true, vec![(5.0, 0.5)]),
            line("below-lowest", false, vec![(2.0, 0.0)]),
            line("below-lowest", true, vec![]),
        ]
    }

    #[test]
    fn a_line_and_a_legend_entry_per_series() {
        let svg = survival(&lines(), "a title & more", "still undetected").unwrap();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        for text in [
            "stale-lru steered",
            "stale-lru baseline",
            "below-lowest steered",
            "below-lowest baseline",
            "1 ms",
            "10 s",
            "100%",
            "still undetected",
            "a title &amp; more",
        ] {
            assert!(svg.contains(text), "missing {text:?}");
        }
        // Each solid line is one polyline, its legend key another; a dashed line and its
        // key are a polyline per dash. Colours go by key.
        let series = |colour: &str| {
            svg.matches(&format!("stroke=\"{colour}\" stroke-width=\"2\""))
                .count()
        };
        assert_eq!(
            series("#1F77B4") + series("#D62728"),
            svg.matches("stroke-width=\"2\"").count()
        );
        assert!(
            series("#1F77B4") > 2 * 2,
            "stale-lru: both lines, their keys"
        );
        // Every coordinate is a number: nothing of the plot went NaN or infinite.
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn steps_go_down_at_each_detection_and_run_to_the_cap() {
        assert_eq!(
            steps(&lines()[1]),
            vec![(T_MIN, 1.0), (5.0, 1.0), (5.0, 0.5), (10.0, 0.5)]
        );
        assert_eq!(time_label(0.01), "10 ms");
        assert_eq!(time_label(100.0), "100 s");
    }
}
