//! `plot`: a timeline, one lane per device (or per register), reads above writes,
//! binned so that ten million events draw as fast as ten. With symbols, an SVG names
//! on hover (`<title>`) the functions behind each cell.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mmio_core::{Access, DeviceId};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::inspect::{describe, open};
use crate::progress::Progress;
use crate::svd::{register_address, SvdMap};
use crate::symbols::{FunctionCounts, Symbols};

/// What a lane is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PlotBy {
    /// One lane per device.
    #[default]
    Device,
    /// One lane per register (device and offset; its SVD name with `--svd`).
    Register,
}

/// How a plot is drawn beyond its inputs and output.
pub struct PlotOptions<'a> {
    /// Lanes per device or per register.
    pub by: PlotBy,
    /// Names the functions of each cell on hover (SVG).
    pub symbols: &'a Symbols,
    /// Names register lanes.
    pub svd: Option<&'a SvdMap>,
}

const BINS: usize = 600;
/// DejaVu Sans where distributions put it (Debian and Ubuntu, Fedora, Arch, openSUSE,
/// Homebrew), the first found is used; `MMIO_TRACE_FONT` names another TrueType file.
const FONTS: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/DejaVuSans.ttf",
    "/opt/homebrew/share/fonts/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
];

/// The font file to draw text with.
fn font_file() -> Result<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("MMIO_TRACE_FONT") {
        return Ok(path.into());
    }
    FONTS
        .iter()
        .map(std::path::PathBuf::from)
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "plot needs the DejaVu Sans font (Debian: fonts-dejavu-core), looked for in {}; or set MMIO_TRACE_FONT to a .ttf file",
                FONTS.join(", ")
            )
        })
}

/// Lanes drawn at most: the busiest, when a trace has more (one a register: a fuzzed
/// guest touches thousands of unassigned addresses).
const MAX_LANES: usize = 100;

struct Lane {
    name: String,
    /// The device's base, to tell apart lanes of one name.
    base: Option<u64>,
    /// Per bin: (reads, writes).
    bins: Vec<(u64, u64)>,
    /// Per non-empty bin, with symbols: accesses per PC, named once binning is done.
    pcs: HashMap<usize, HashMap<u64, u64>>,
    /// Per non-empty bin, with symbols: the functions behind its accesses, busiest first.
    functions: HashMap<usize, String>,
}

impl Lane {
    fn accesses(&self) -> u64 {
        self.bins.iter().map(|(r, w)| r + w).sum()
    }
}

/// What a lane is: a device (`--by device`), a register the SVD file names, or a
/// device's offset.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum LaneKey {
    Device(DeviceId),
    SvdRegister(u64),
    Offset(DeviceId, u64),
}

/// A hover text over one cell of the picture, in pixels.
struct Hover {
    corners: ((i32, i32), (i32, i32)),
    text: String,
}

pub fn plot(paths: &[PathBuf], output: &Path, options: &PlotOptions) -> Result<()> {
    let svg = match output.extension().and_then(|e| e.to_str()) {
        Some("svg") => true,
        Some("png") => false,
        _ => bail!("{}: plot writes .svg or .png", output.display()),
    };
    if !svg && !options.symbols.is_empty() {
        tracing::warn!("--symbols names functions on hover, which only an .svg picture has");
    }
    if options.svd.is_some() && options.by == PlotBy::Device {
        tracing::warn!("--svd names the lanes of --by register; one lane a device uses no SVD");
    }
    let font_path = font_file()?;
    let font = std::fs::read(&font_path)
        .with_context(|| format!("cannot read the font {}", font_path.display()))?;
    if register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .is_err()
    {
        bail!("cannot load the font {}", font_path.display());
    }
    // Pass 1: the x range (instruction counts when every event has one, else seq).
    let (mut last_seq, mut last_count, mut all_counted, mut events) = (0u64, 0u64, true, 0u64);
    {
        let mut progress = Progress::new("scanning");
        for event in open(paths)? {
            let event = event?;
            progress.tick();
            events += 1;
            last_seq = last_seq.max(event.seq);
            match event.instr_count {
                Some(count) => last_count = last_count.max(count),
                None => all_counted = false,
            }
        }
    }
    if events == 0 {
        bail!("{}: the trace has no events to plot", describe(paths));
    }
    let (x_label, x_max) = if all_counted {
        ("instructions", last_count)
    } else {
        ("event (seq)", last_seq)
    };
    // Pass 2: bin each lane's reads and writes.
    let mut reader = open(paths)?;
    let devices = reader.devices().clone();
    let mut lanes: Vec<Lane> = Vec::new();
    let mut lane_of: HashMap<LaneKey, usize> = HashMap::new();
    let mut progress = Progress::new("binning");
    let hover = svg && !options.symbols.is_empty();
    let mut svd_covers = false;
    for event in reader.by_ref() {
        let event = event?;
        progress.tick();
        let address = register_address(&event);
        let register = match options.by {
            PlotBy::Device => None,
            PlotBy::Register => options.svd.and_then(|svd| svd.register(address)),
        };
        let key = match (options.by, register) {
            (PlotBy::Device, _) => LaneKey::Device(event.device),
            // A byte of a word register is the register's lane.
            (PlotBy::Register, Some(register)) => LaneKey::SvdRegister(register.address),
            (PlotBy::Register, None) => LaneKey::Offset(event.device, event.offset),
        };
        let lane = *lane_of.entry(key).or_insert_with(|| {
            let device = devices.get(event.device);
            let device_name = device
                .as_ref()
                .map(|d| d.name.to_string())
                .unwrap_or_else(|| "(none)".into());
            svd_covers |= options
                .svd
                .is_some_and(|svd| svd.peripheral(address).is_some());
            let name = match key {
                LaneKey::Device(_) => device_name,
                LaneKey::SvdRegister(_) => register.map_or(device_name, |r| r.name.clone()),
                LaneKey::Offset(..) if device.is_some() => {
                    format!("{device_name}+{:#x}", event.offset)
                }
                LaneKey::Offset(..) => format!("{address:#x}"),
            };
            lanes.push(Lane {
                name,
                base: device.map(|d| d.base),
                bins: vec![(0, 0); BINS],
                pcs: HashMap::new(),
                functions: HashMap::new(),
            });
            lanes.len() - 1
        });
        let x = if all_counted {
            event.instr_count.unwrap_or(0)
        } else {
            event.seq
        };
        let bin = bin_of(x, x_max);
        let lane = &mut lanes[lane];
        let cell = &mut lane.bins[bin];
        match event.access {
            Access::Read | Access::Fetch => cell.0 += 1,
            Access::Write => cell.1 += 1,
        }
        if hover {
            *lane
                .pcs
                .entry(bin)
                .or_default()
                .entry(event.guest_pc)
                .or_default() += 1;
        }
    }
    drop(progress);
    if let Some(svd) = options.svd.filter(|_| !svd_covers) {
        svd.warn_covers_none();
    }
    if lanes.len() > MAX_LANES {
        tracing::warn!(
            "{} lanes: drawing the {MAX_LANES} busiest (convert --filter keeps the others)",
            lanes.len()
        );
        let mut busiest: Vec<(u64, usize)> = lanes
            .iter()
            .enumerate()
            .map(|(i, l)| (l.accesses(), i))
            .collect();
        busiest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let kept: HashSet<usize> = busiest[..MAX_LANES].iter().map(|&(_, i)| i).collect();
        let mut index = 0;
        lanes.retain(|_| {
            index += 1;
            kept.contains(&(index - 1))
        });
    }
    for lane in &mut lanes {
        for (bin, pcs) in std::mem::take(&mut lane.pcs) {
            let mut functions = FunctionCounts::default();
            for (pc, count) in pcs {
                functions.add(options.symbols.function_name(pc), count);
            }
            let top: Vec<String> = functions
                .top(5)
                .iter()
                .map(|(name, count)| format!("{name} ({count})"))
                .collect();
            lane.functions.insert(bin, top.join(", "));
        }
    }
    name_apart(&mut lanes);
    let size = (1200, 120 + 48 * lanes.len() as u32);
    if !svg {
        let area = BitMapBackend::new(output, size).into_drawing_area();
        draw(area, &lanes, x_label, x_max)?;
        return Ok(());
    }
    let mut picture = String::new();
    let hovers = draw(
        SVGBackend::with_string(&mut picture, size).into_drawing_area(),
        &lanes,
        x_label,
        x_max,
    )?;
    if hover {
        let end = picture
            .rfind("</svg>")
            .context("the SVG backend wrote no </svg>")?;
        let mut titles = String::from("<g fill=\"none\" pointer-events=\"all\">\n");
        for Hover { corners, text } in hovers {
            let ((left, top), (right, bottom)) = corners;
            let _ = writeln!(
                titles,
                "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\"><title>{}</title></rect>",
                (right - left).max(1),
                (bottom - top).max(1),
                xml_escape(&text)
            );
        }
        titles.push_str("</g>\n");
        picture.insert_str(end, &titles);
    }
    std::fs::write(output, picture).with_context(|| format!("cannot write {}", output.display()))
}

/// Lanes of one name (a board's four UARTs) get their device's base appended.
fn name_apart(lanes: &mut [Lane]) {
    let mut count: HashMap<String, usize> = HashMap::new();
    for lane in lanes.iter() {
        *count.entry(lane.name.clone()).or_default() += 1;
    }
    for lane in lanes.iter_mut() {
        if count[&lane.name] > 1 {
            if let Some(base) = lane.base {
                lane.name = format!("{}@{base:#x}", lane.name);
            }
        }
    }
}

/// The bin `x` (0..=`x_max`) falls in.
fn bin_of(x: u64, x_max: u64) -> usize {
    let bin = (u128::from(x) * BINS as u128) / (u128::from(x_max) + 1);
    (bin as usize).min(BINS - 1)
}

/// The first and last x of `bin` (integers, as [`bin_of`] assigns them); first > last
/// for a bin no x falls in.
fn bin_span(bin: usize, x_max: u64) -> (u64, u64) {
    // The smallest x with x * BINS >= bin * (x_max + 1).
    let start =
        |bin: usize| -> u128 { (bin as u128 * (u128::from(x_max) + 1)).div_ceil(BINS as u128) };
    let last = if bin + 1 == BINS {
        u128::from(x_max)
    } else {
        start(bin + 1).saturating_sub(1)
    };
    (start(bin) as u64, last as u64)
}

/// `1 read`, `2 reads`.
fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Draws the lanes; returns the hover text of each non-empty cell that has functions.
fn draw<B: DrawingBackend>(
    area: DrawingArea<B, Shift>,
    lanes: &[Lane],
    x_label: &str,
    x_max: u64,
) -> Result<Vec<Hover>>
where
    B::ErrorType: 'static,
{
    let failed = |e: DrawingAreaErrorKind<B::ErrorType>| anyhow::anyhow!("drawing failed: {e:?}");
    area.fill(&WHITE).map_err(failed)?;
    let names: Vec<String> = lanes.iter().map(|l| l.name.clone()).collect();
    let mut chart = ChartBuilder::on(&area)
        .caption(
            "MMIO accesses per lane (reads above, writes below)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(140)
        .build_cartesian_2d(0f64..(x_max as f64 + 1.0), 0f64..lanes.len() as f64)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_labels(lanes.len() * 2 + 1)
        .y_label_formatter(&|y| {
            let lane = y.floor() as usize;
            // Name each lane once, at its middle.
            if (y - lane as f64 - 0.5).abs() < 1e-6 {
                names
                    .get(lanes_from_top(lane, names.len()))
                    .cloned()
                    .unwrap_or_default()
            } else {
                String::new()
            }
        })
        .disable_y_mesh()
        .draw()
        .map_err(failed)?;
    let peak = lanes
        .iter()
        .flat_map(|l| l.bins.iter().map(|(r, w)| (*r).max(*w)))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bin_width = (x_max as f64 + 1.0) / BINS as f64;
    let mut hovers = Vec::new();
    for (index, lane) in lanes.iter().enumerate() {
        let y = lanes_from_top(index, lanes.len()) as f64;
        for (bin, (reads, writes)) in lane.bins.iter().enumerate() {
            let x = bin as f64 * bin_width;
            if let Some(functions) = lane.functions.get(&bin) {
                let (first, last) = bin_span(bin, x_max);
                let span = if first == last {
                    first.to_string()
                } else {
                    format!("{first}-{last}")
                };
                hovers.push(Hover {
                    corners: (
                        chart.backend_coord(&(x, y + 0.9)),
                        chart.backend_coord(&(x + bin_width, y + 0.1)),
                    ),
                    text: format!(
                        "{}: {}, {} at {x_label} {span}: {functions}",
                        lane.name,
                        plural(*reads, "read"),
                        plural(*writes, "write"),
                    ),
                });
            }
            // Darker for busier bins, on a log scale so rare accesses stay visible.
            let shade = |count: u64| 0.25 + 0.75 * ((count as f64).ln_1p() / peak.ln_1p());
            if *reads > 0 {
                let style = BLUE.mix(shade(*reads)).filled();
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y + 0.5), (x + bin_width, y + 0.9)],
                        style,
                    )))
                    .map_err(failed)?;
            }
            if *writes > 0 {
                let style = RED.mix(shade(*writes)).filled();
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y + 0.1), (x + bin_width, y + 0.5)],
                        style,
                    )))
                    .map_err(failed)?;
            }
        }
    }
    area.present().map_err(failed)?;
    Ok(hovers)
}

/// Lane 0 (the first device seen) is drawn at the top.
fn lanes_from_top(index: usize, count: usize) -> usize {
    count - 1 - index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bin_spans_exactly_the_values_binned_into_it() {
        for x_max in [0u64, 1, 27, 599, 600, 4999, 1_000_003] {
            let mut next = 0u64;
            for bin in 0..BINS {
                let (first, last) = bin_span(bin, x_max);
                if first > last {
                    continue; // No value falls in this bin.
                }
                assert_eq!(first, next, "x_max {x_max} bin {bin}");
                for x in [first, last] {
                    assert_eq!(bin_of(x, x_max), bin, "x_max {x_max} x {x}");
                }
                next = last + 1;
            }
            assert_eq!(next, x_max + 1, "x_max {x_max}: every value in a bin");
        }
        // The case a float computation got wrong: seq 4075 of 0..=4999.
        let bin = bin_of(4075, 4999);
        let (first, last) = bin_span(bin, 4999);
        assert!(first <= 4075 && 4075 <= last, "{first}-{last}");
    }

    #[test]
    fn lanes_of_one_name_are_told_apart_by_base() {
        let lane = |name: &str, base: Option<u64>| Lane {
            name: name.into(),
            base,
            bins: Vec::new(),
            pcs: HashMap::new(),
            functions: HashMap::new(),
        };
        let mut lanes = vec![
            lane("pl011", Some(0x1000_9000)),
            lane("pl011", Some(0x1000_a000)),
            lane("sp804", Some(0x1001_1000)),
        ];
        name_apart(&mut lanes);
        let names: Vec<&str> = lanes.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["pl011@0x10009000", "pl011@0x1000a000", "sp804"]);
    }

    #[test]
    fn titles_are_escaped_and_counted_in_words() {
        assert_eq!(xml_escape("a<b> & \"c\""), "a&lt;b&gt; &amp; \"c\"");
        assert_eq!(plural(1, "read"), "1 read");
        assert_eq!(plural(0, "write"), "0 writes");
    }
}
