//! Drawing a directly-follows graph as SVG with a layered left-to-right layout.
//!
//! The layout is a small Sugiyama-style pipeline: back edges found by a
//! depth-first search from the start node are set aside so the rest is acyclic,
//! nodes get the layer of their longest path from the start, edges that span
//! several layers get a dummy point in each layer they cross, the nodes and
//! points of each layer are ordered by barycentre sweeps to reduce crossings,
//! and layers become columns. Back edges run right to left (in a different
//! colour) through their own points; self-loops arc over their box.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::analysis::Dfg;
use crate::log::EventLog;

const NODE_HEIGHT: f64 = 44.0;
const ROW_GAP: f64 = 36.0;
const COLUMN_GAP: f64 = 90.0;
/// Height of the row a long edge takes when it crosses a column.
const DUMMY_ROW: f64 = 22.0;
const MARGIN: f64 = 40.0;
const CHAR_WIDTH: f64 = 7.2;
const BARYCENTER_SWEEPS: usize = 8;

struct Node {
    label: String,
    detail: String,
    terminal: bool,
}

struct Edge {
    from: usize,
    to: usize,
    count: u64,
}

/// Renders the graph: one box per activity with its event count, the start
/// and end of cases as circles, and one arrow per edge labelled with its count.
pub fn render_dfg(log: &EventLog, dfg: &Dfg) -> String {
    let mut nodes = vec![Node { label: "start".into(), detail: String::new(), terminal: true }];
    let mut index_of = HashMap::new();
    for &(activity, count) in &dfg.activity_counts {
        index_of.insert(activity, nodes.len());
        nodes.push(Node { label: log.activity_name(activity).to_owned(), detail: count.to_string(), terminal: false });
    }
    let end = nodes.len();
    nodes.push(Node { label: "end".into(), detail: String::new(), terminal: true });
    let mut edges = Vec::new();
    for &(activity, count) in &dfg.start_activities {
        if let Some(&to) = index_of.get(&activity) {
            edges.push(Edge { from: 0, to, count });
        }
    }
    for edge in &dfg.edges {
        if let (Some(&from), Some(&to)) = (index_of.get(&edge.source), index_of.get(&edge.target)) {
            edges.push(Edge { from, to, count: edge.count });
        }
    }
    for &(activity, count) in &dfg.end_activities {
        if let Some(&from) = index_of.get(&activity) {
            edges.push(Edge { from, to: end, count });
        }
    }
    draw(&nodes, &edges, end)
}

/// Marks the edges that close a cycle in a depth-first search that starts at
/// node 0 and follows heavier edges first.
fn back_edges(node_count: usize, edges: &[Edge]) -> Vec<bool> {
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); node_count];
    for (index, edge) in edges.iter().enumerate() {
        outgoing[edge.from].push(index);
    }
    for list in &mut outgoing {
        list.sort_by(|&a, &b| edges[b].count.cmp(&edges[a].count).then(a.cmp(&b)));
    }
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; node_count];
    let mut back = vec![false; edges.len()];
    for root in 0..node_count {
        if state[root] != 0 {
            continue;
        }
        // An explicit stack of (node, next outgoing position) avoids deep recursion.
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&edge) = outgoing[node].get(*next) {
                *next += 1;
                let target = edges[edge].to;
                match state[target] {
                    0 => {
                        state[target] = 1;
                        stack.push((target, 0));
                    }
                    1 => back[edge] = true,
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    back
}

/// A box, a start/end circle, or a dummy point that carries a long edge across a column.
struct Slot {
    node: Option<usize>,
    layer: usize,
}

/// An edge as drawn: the slots it passes through from left to right, and
/// whether it points right to left.
struct Route {
    slots: Vec<usize>,
    backward: bool,
    count: u64,
}

fn draw(nodes: &[Node], edges: &[Edge], end: usize) -> String {
    let back = back_edges(nodes.len(), edges);

    // Longest-path layering over the acyclic forward edges (Kahn's order).
    let mut layer = vec![0usize; nodes.len()];
    let mut indegree = vec![0usize; nodes.len()];
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (edge, &is_back) in edges.iter().zip(&back) {
        if !is_back && edge.from != edge.to {
            outgoing[edge.from].push(edge.to);
            indegree[edge.to] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..nodes.len()).rev().filter(|&n| indegree[n] == 0).collect();
    let mut topological = Vec::with_capacity(nodes.len());
    while let Some(node) = ready.pop() {
        topological.push(node);
        for &target in &outgoing[node] {
            layer[target] = layer[target].max(layer[node] + 1);
            indegree[target] -= 1;
            if indegree[target] == 0 {
                ready.push(target);
            }
        }
    }
    // The end node always closes the drawing.
    let last_activity_layer = (0..nodes.len()).filter(|&n| n != end).map(|n| layer[n]).max().unwrap_or(0);
    layer[end] = layer[end].max(last_activity_layer + 1);
    let layer_count = layer[end] + 1;

    // Long edges get one dummy slot per column they cross, so that they are
    // routed between the boxes instead of through them.
    let mut slots: Vec<Slot> = topological.iter().map(|&node| Slot { node: Some(node), layer: layer[node] }).collect();
    let mut slot_of = vec![0usize; nodes.len()];
    for (index, slot) in slots.iter().enumerate() {
        if let Some(node) = slot.node {
            slot_of[node] = index;
        }
    }
    let mut routes = Vec::new();
    let mut self_loops = Vec::new();
    for edge in edges {
        if edge.from == edge.to {
            self_loops.push(edge);
            continue;
        }
        let backward = layer[edge.to] < layer[edge.from];
        let (left, right) = if backward { (edge.to, edge.from) } else { (edge.from, edge.to) };
        let mut route = vec![slot_of[left]];
        for crossed in layer[left] + 1..layer[right] {
            slots.push(Slot { node: None, layer: crossed });
            route.push(slots.len() - 1);
        }
        route.push(slot_of[right]);
        routes.push(Route { slots: route, backward, count: edge.count });
    }

    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for (index, slot) in slots.iter().enumerate() {
        columns[slot.layer].push(index);
    }
    let mut left_neighbours: Vec<Vec<(usize, f64)>> = vec![Vec::new(); slots.len()];
    let mut right_neighbours: Vec<Vec<(usize, f64)>> = vec![Vec::new(); slots.len()];
    for route in &routes {
        for pair in route.slots.windows(2) {
            let weight = route.count as f64;
            right_neighbours[pair[0]].push((pair[1], weight));
            left_neighbours[pair[1]].push((pair[0], weight));
        }
    }

    // Barycentre sweeps: order each column by the weighted mean row of its
    // neighbours in the column before (left to right) or after (right to left).
    let mut row = vec![0f64; slots.len()];
    let set_rows = |columns: &Vec<Vec<usize>>, row: &mut Vec<f64>| {
        for column in columns {
            for (index, &slot) in column.iter().enumerate() {
                row[slot] = index as f64 - (column.len() as f64 - 1.0) / 2.0;
            }
        }
    };
    set_rows(&columns, &mut row);
    for sweep in 0..BARYCENTER_SWEEPS {
        let rightward = sweep % 2 == 0;
        let order: Vec<usize> =
            if rightward { (1..layer_count).collect() } else { (0..layer_count.saturating_sub(1)).rev().collect() };
        for column_index in order {
            let mut keyed: Vec<(f64, usize)> = columns[column_index]
                .iter()
                .map(|&slot| {
                    let neighbours = if rightward { &left_neighbours[slot] } else { &right_neighbours[slot] };
                    let (sum, weight) = neighbours.iter().fold((0.0, 0.0), |(sum, weight), &(neighbour, count)| {
                        (sum + row[neighbour] * count, weight + count)
                    });
                    let key = if weight > 0.0 { sum / weight } else { row[slot] };
                    (key, slot)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            columns[column_index] = keyed.into_iter().map(|(_, slot)| slot).collect();
            set_rows(&columns, &mut row);
        }
    }

    // Geometry: columns as wide as their widest box; boxes take a full row,
    // dummy points a narrow one; each column is centred vertically.
    let box_width = |node: &Node| {
        if node.terminal {
            NODE_HEIGHT
        } else {
            let chars = node.label.chars().count().max(node.detail.len()) as f64;
            (chars * CHAR_WIDTH + 24.0).clamp(70.0, 320.0)
        }
    };
    let slot_height = |slot: &Slot| {
        if slot.node.is_some() { NODE_HEIGHT + ROW_GAP } else { DUMMY_ROW }
    };
    let column_heights: Vec<f64> =
        columns.iter().map(|column| column.iter().map(|&s| slot_height(&slots[s])).sum()).collect();
    let tallest = column_heights.iter().copied().fold(0.0, f64::max);
    let top = MARGIN + 40.0;
    let mut x = vec![0f64; slots.len()];
    let mut y = vec![0f64; slots.len()];
    let mut width = vec![0f64; slots.len()];
    let mut cursor_x = MARGIN;
    for (column, height) in columns.iter().zip(&column_heights) {
        let column_width =
            column.iter().filter_map(|&s| slots[s].node.map(|n| box_width(&nodes[n]))).fold(0.0, f64::max);
        let mut cursor_y = top + (tallest - height) / 2.0;
        for &s in column {
            match slots[s].node {
                Some(node) => {
                    width[s] = box_width(&nodes[node]);
                    x[s] = cursor_x + (column_width - width[s]) / 2.0;
                    y[s] = cursor_y;
                }
                None => {
                    x[s] = cursor_x + column_width / 2.0;
                    y[s] = cursor_y + DUMMY_ROW / 2.0 - NODE_HEIGHT / 2.0;
                }
            }
            cursor_y += slot_height(&slots[s]);
        }
        cursor_x += column_width + COLUMN_GAP;
    }
    let canvas_width = cursor_x - COLUMN_GAP + MARGIN;
    let canvas_height = top + tallest + MARGIN;

    let max_count = edges.iter().map(|edge| edge.count).max().unwrap_or(1).max(1) as f64;
    let stroke_width = |count: u64| 1.0 + 3.0 * (count as f64).ln_1p() / max_count.ln_1p();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{canvas_width:.0}" height="{canvas_height:.0}" viewBox="0 0 {canvas_width:.0} {canvas_height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto"><polygon points="0,0 10,5 0,10" fill="#555"/></marker></defs>
<rect width="100%" height="100%" fill="white"/>
"##
    );
    let mut labels = String::new();
    let mut label = |label_x: f64, label_y: f64, count: u64| {
        let _ = writeln!(
            labels,
            r##"<text x="{label_x:.1}" y="{label_y:.1}" text-anchor="middle" fill="#222" stroke="white" stroke-width="3" paint-order="stroke">{count}</text>"##
        );
    };
    for route in &routes {
        // Forward edges leave a box's right side at mid-height; backward edges
        // leave its left side lower down, so opposite edges do not overlap.
        let mid = NODE_HEIGHT / 2.0;
        let points: Vec<(f64, f64)> = route
            .slots
            .iter()
            .enumerate()
            .map(|(position, &s)| {
                if slots[s].node.is_none() {
                    return (x[s], y[s] + mid);
                }
                // The leftmost box is left by its right side, the rightmost
                // entered by its left side, whichever way the edge points.
                let side_x = if position == 0 { x[s] + width[s] } else { x[s] };
                let side_y = if route.backward { y[s] + mid + 10.0 } else { y[s] + mid };
                (side_x, side_y)
            })
            .collect();
        let ordered: Vec<(f64, f64)> = if route.backward { points.into_iter().rev().collect() } else { points };
        let mut path = format!("M{:.1},{:.1}", ordered[0].0, ordered[0].1);
        for pair in ordered.windows(2) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            let bend = (bx - ax) / 2.0;
            let _ = write!(path, " C{:.1},{ay:.1} {:.1},{by:.1} {bx:.1},{by:.1}", ax + bend, bx - bend);
        }
        let _ = writeln!(
            svg,
            r##"<path d="{path}" fill="none" stroke="{}" stroke-opacity="0.85" stroke-width="{:.2}" marker-end="url(#arrow)"/>"##,
            if route.backward { "#b06a2c" } else { "#555" },
            stroke_width(route.count)
        );
        let (ax, ay) = ordered[0];
        let (bx, by) = ordered[1];
        label((ax + bx) / 2.0, (ay + by) / 2.0 - 4.0, route.count);
    }
    for edge in self_loops {
        let s = slot_of[edge.from];
        let (cx, box_top) = (x[s] + width[s] / 2.0, y[s]);
        let _ = writeln!(
            svg,
            r##"<path d="M{:.1},{box_top:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{box_top:.1}" fill="none" stroke="#555" stroke-width="{:.2}" marker-end="url(#arrow)"/>"##,
            cx - 14.0,
            cx - 34.0,
            box_top - 36.0,
            cx + 34.0,
            box_top - 36.0,
            cx + 14.0,
            stroke_width(edge.count)
        );
        label(cx, box_top - 30.0, edge.count);
    }
    for (s, slot) in slots.iter().enumerate() {
        let Some(index) = slot.node else { continue };
        let node = &nodes[index];
        let (nx, ny, w) = (x[s], y[s], width[s]);
        if node.terminal {
            let fill = if index == 0 { "#3a9d5d" } else { "#c0392b" };
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="{:.1}" fill="{fill}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="white" font-weight="bold">{}</text>"##,
                nx + w / 2.0,
                ny + NODE_HEIGHT / 2.0,
                NODE_HEIGHT / 2.0,
                nx + w / 2.0,
                ny + NODE_HEIGHT / 2.0 + 4.0,
                escape(&node.label)
            );
        } else {
            let _ = writeln!(
                svg,
                r##"<g><title>{label}: {detail} events</title><rect x="{nx:.1}" y="{ny:.1}" width="{w:.1}" height="{NODE_HEIGHT}" rx="6" fill="#eaf2fb" stroke="#2c6fbb" stroke-width="1.5"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#111">{label}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#2c6fbb" font-size="11">{detail}</text></g>"##,
                nx + w / 2.0,
                ny + 18.0,
                nx + w / 2.0,
                ny + 34.0,
                label = escape(&node.label),
                detail = escape(&node.detail),
            );
        }
    }
    svg.push_str(&labels);
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // XML 1.0 cannot carry most control characters; drop them from the picture.
            '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {}
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::discover_dfg;

    #[test]
    fn draws_every_node_and_edge_count() {
        let mut log = EventLog::new();
        log.push_case("1", ["a", "b", "c"]);
        log.push_case("2", ["a", "c", "b", "b"]);
        log.push_case("3", ["a <&> z"]);
        let dfg = discover_dfg(&log);
        let svg = render_dfg(&log, &dfg);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(">a &lt;&amp;&gt; z<"));
        // Nodes: start, end and 4 activities; edges: 5 DFG + 2 start + 3 end.
        assert_eq!(svg.matches("<rect x=").count(), 4);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("<path d=").count(), 10);
    }
}
