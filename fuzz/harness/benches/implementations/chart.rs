//! The benchmark's chart: time per operation at one size, grouped by operation, one bar per
//! implementation on a log scale, drawn with plotters' SVG backend.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::report::{ratio, time};
use super::{names, Key, Op, BASELINE};

/// One colour per implementation, in the order of `names()`.
const COLOURS: [RGBColor; 10] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x2c, 0xa0, 0x2c),
];

/// Grouped horizontal bars, one group per operation at `n` slots, each bar labelled with its
/// implementation and time; the group title carries core / post.
pub fn bars(results: &BTreeMap<Key, f64>, n: usize, machine: &str) -> Result<String, String> {
    let all_names = names();
    let names: Vec<(usize, &str)> = all_names
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, name)| {
            Op::ALL
                .iter()
                .any(|&op| results.contains_key(&(op, n, name)))
        })
        .collect();
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|&op| {
            names
                .iter()
                .any(|(_, name)| results.contains_key(&(op, n, name)))
        })
        .collect();
    let slowest = results
        .iter()
        .filter(|((_, size, _), _)| *size == n)
        .fold(1.0, |hi: f64, (_, &v)| hi.max(v));
    // The axis starts at 1 ns (a dynamic call and a compare already take that); a bar ends a
    // decade further right than the slowest, to leave room for the labels.
    let right = 10f64.powf(slowest.log10().ceil() + 1.0);
    // Rows from the top: a title row per operation, then a row per implementation.
    let group_rows = names.len() + 1;
    let rows = (ops.len() * group_rows) as f64;
    let height = 90 + (rows * 13.0) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Time per operation at {n} slots (log scale; lower is faster) - {machine}"),
                ("sans-serif", 13),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(10)
            .build_cartesian_2d((1.0..right).log_scale(), rows..0.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|ns| decade(ns.log10().round() as i32))
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        let text = ("sans-serif", 11).into_font();
        for (g, &op) in ops.iter().enumerate() {
            let top = (g * group_rows) as f64;
            let title = match ratio(results, op, n) {
                Some(r) => format!("{} (core / {BASELINE}: {r:.2})", op.label()),
                None => op.label().to_string(),
            };
            chart
                .draw_series([Text::new(
                    title,
                    (1.05, top + 0.15),
                    text.clone().style(FontStyle::Bold),
                )])
                .map_err(|e| e.to_string())?;
            for (row, &(colour, name)) in names.iter().enumerate() {
                let Some(&ns) = results.get(&(op, n, name)) else {
                    continue;
                };
                let y = top + 1.0 + row as f64;
                let end = ns.max(1.0);
                let fill = COLOURS[colour % COLOURS.len()].filled();
                chart
                    .draw_series([Rectangle::new([(1.0, y + 0.1), (end, y + 0.9)], fill)])
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series([Text::new(
                        format!("{name} {}", time(ns)),
                        (end * 1.1, y + 0.05),
                        text.clone(),
                    )])
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// An axis label for 10^e nanoseconds: `1 ns`, `10 µs`, ...
fn decade(e: i32) -> String {
    let unit = ["ns", "µs", "ms", "s"][(e / 3).clamp(0, 3) as usize];
    format!("{} {unit}", 10u64.pow((e - 3 * (e / 3).clamp(0, 3)) as u32))
}
