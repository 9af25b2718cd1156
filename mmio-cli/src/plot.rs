//! `plot`: a timeline, one lane per device (or per register), reads above writes,
//! binned so that ten million events draw as fast as ten. With symbols, an SVG names
//! on hover (`<title>`) the functions behind each cell.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mmio_core::{Access, DeviceId};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::inspect::{describe, open};
use crate::progress::Progress;
use crate::svd::SvdMap;
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

struct Lane {
    name: String,
    /// The device's base, to tell apart lanes of one name.
    base: Option<u64>,
    /// Per bin: (reads, writes).
    bins: Vec<(u64, u64)>,
    /// Per non-empty bin, with symbols: the functions behind its accesses.
    functions: HashMap<usize, FunctionCounts>,
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
    let mut lane_of: HashMap<(DeviceId, u64), usize> = HashMap::new();
    let mut progress = Progress::new("binning");
    let hover = svg && !options.symbols.is_empty();
    let mut svd_covers = false;
    for event in reader.by_ref() {
        let event = event?;
        progress.tick();
        let offset = match options.by {
            PlotBy::Device => 0,
            PlotBy::Register => event.offset,
        };
        let lane = *lane_of.entry((event.device, offset)).or_insert_with(|| {
            let device = devices.get(event.device);
            let device_name = device
                .as_ref()
                .map(|d| d.name.to_string())
                .unwrap_or_else(|| "(none)".into());
            let address = event.phys_addr.unwrap_or(event.virt_addr);
            svd_covers |= options
                .svd
                .is_some_and(|svd| svd.peripheral(address).is_some());
            let name = match options.by {
                PlotBy::Device => device_name,
                PlotBy::Register => match options.svd.and_then(|svd| svd.register(address)) {
                    Some(register) => register.name.clone(),
                    None if device.is_some() => format!("{device_name}+{offset:#x}"),
                    None => format!("{address:#x}"),
                },
            };
            lanes.push(Lane {
                name,
                base: device.map(|d| d.base),
                bins: vec![(0, 0); BINS],
                functions: HashMap::new(),
            });
            lanes.len() - 1
        });
        let x = if all_counted {
            event.instr_count.unwrap_or(0)
        } else {
            event.seq
        };
        let bin = ((x as u128 * BINS as u128) / (x_max as u128 + 1)) as usize;
        let bin = bin.min(BINS - 1);
        let lane = &mut lanes[lane];
        let cell = &mut lane.bins[bin];
        match event.access {
            Access::Read => cell.0 += 1,
            Access::Write => cell.1 += 1,
        }
        if hover {
            lane.functions
                .entry(bin)
                .or_default()
                .add(options.symbols.function_name(event.guest_pc), 1);
        }
    }
    drop(progress);
    if let Some(svd) = options.svd.filter(|_| !svd_covers) {
        svd.warn_covers_none();
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

/// The whole numbers in `[start, end)`: `7` or `7-12`.
fn span(start: f64, end: f64) -> String {
    let first = start.ceil() as u64;
    let last = (end.ceil() as u64).saturating_sub(1).max(first);
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
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
                let top: Vec<String> = functions
                    .top(5)
                    .iter()
                    .map(|(name, count)| format!("{name} ({count})"))
                    .collect();
                hovers.push(Hover {
                    corners: (
                        chart.backend_coord(&(x, y + 0.9)),
                        chart.backend_coord(&(x + bin_width, y + 0.1)),
                    ),
                    text: format!(
                        "{}: {reads} reads, {writes} writes at {x_label} {}: {}",
                        lane.name,
                        span(x, x + bin_width),
                        top.join(", ")
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
