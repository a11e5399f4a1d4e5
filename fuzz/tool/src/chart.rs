//! Survival charts, drawn with plotters' SVG backend: the fraction of trials (eval's zoo bugs)
//! or of mutants (`mutants`) still undetected against time on a log scale, one step line per
//! group, steered solid and baseline dashed, with a legend beside the plot.

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::eval::Group;

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

/// The chart of `groups` as SVG text, titled `title`, the y axis named `y_label`, each line
/// named in the legend by `label`.
pub fn survival(
    groups: &[Group],
    title: &str,
    y_label: &str,
    label: &dyn Fn(&Group) -> String,
) -> Result<String, String> {
    let t_max = groups
        .iter()
        .map(|g| g.cap_seconds)
        .fold(1.0, f64::max)
        .max(T_MIN * 10.0);
    let height = 500.max(60 + groups.len() as u32 * LEGEND_ROW as u32);
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
        for (row, (colour, group)) in in_legend_order(groups).into_iter().enumerate() {
            let style = PALETTE[colour % PALETTE.len()].stroke_width(2);
            let steered = group.generator == "steered";
            let points = steps(group);
            let y = 30 + row as i32 * LEGEND_ROW;
            let key = vec![(10, y), (38, y)];
            if steered {
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
                .draw(&Text::new(label(group), (44, y - 6), ("sans-serif", 12)))
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    if !svg.ends_with('\n') {
        svg.push('\n');
    }
    Ok(svg)
}

/// The groups with their colour, each bug × engine's steered line right above its baseline;
/// colours in order of first appearance.
fn in_legend_order(groups: &[Group]) -> Vec<(usize, &Group)> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut series: Vec<(usize, &Group)> = groups
        .iter()
        .map(|group| {
            let pair = (group.bug, group.engine);
            let colour = pairs.iter().position(|&p| p == pair).unwrap_or_else(|| {
                pairs.push(pair);
                pairs.len() - 1
            });
            (colour, group)
        })
        .collect();
    series.sort_by_key(|&(colour, group)| (colour, group.generator != "steered"));
    series
}

/// The step function of a survival curve: flat until each detection, then down, flat again
/// to the cap.
fn steps(group: &Group) -> Vec<(f64, f64)> {
    let at = |t: f64| t.clamp(T_MIN, group.cap_seconds.max(T_MIN));
    let mut points = vec![(T_MIN, 1.0)];
    let mut fraction = 1.0;
    for &(t, after) in &group.survival {
        points.push((at(t), fraction));
        points.push((at(t), after));
        fraction = after;
    }
    points.push((at(group.cap_seconds), fraction));
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
    use crate::eval::stats::tests::fixed_results;
    use crate::eval::{summarize, survival_svg};

    #[test]
    fn a_line_and_a_legend_entry_per_series() {
        let groups = summarize(&fixed_results());
        let svg = survival_svg(&groups).unwrap();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        for legend in [
            "stale-lru · stress · steered (2/2 found)",
            "stale-lru · stress · baseline (1/2 found)",
            "below-lowest · libfuzzer · steered (1/1 found)",
            "below-lowest · libfuzzer · baseline (0/1 found)",
            "1 ms",
            "10 s",
            "100%",
            "trials still undetected",
            "zoo bugs still undetected over time",
        ] {
            assert!(svg.contains(legend), "missing {legend:?}");
        }
        // Each steered line is one polyline, its legend key another; a dashed line and its
        // key are a polyline per dash.
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
            "stale-lru: a solid line, a dashed one, their keys"
        );
        // Every coordinate is a number: nothing of the plot went NaN or infinite.
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn steps_go_down_at_each_detection_and_run_to_the_cap() {
        let groups = summarize(&fixed_results());
        let baseline = &groups[1];
        assert_eq!(
            steps(baseline),
            vec![(T_MIN, 1.0), (5.0, 1.0), (5.0, 0.5), (10.0, 0.5)]
        );
        assert_eq!(time_label(0.01), "10 ms");
        assert_eq!(time_label(100.0), "100 s");
    }
}
