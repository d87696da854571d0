//! The human-readable link table printed by the admin command.

use std::fmt::Write;

use super::{LinkSpec, LinkTable, Partition, PartitionGroup};

impl LinkTable {
    /// One row per default and override, then the partitions, aligned for a terminal:
    ///
    /// ```text
    /// scope       from     to       delay                      loss  state
    /// default     same dc           const(0) (mean 0.000 ms)   0%    up
    /// default     other dc          exp(20) (mean 20.000 ms)   0.1%  up
    /// datacenter  us-east  eu-west  40+exp(5) (mean 45.000 ms) 0%    up
    /// partitions:
    ///   #1 {dc us-east} <-> {dc eu-west, node n3}
    /// ```
    pub fn describe(&self) -> String {
        let mut rows = vec![[
            "scope".to_string(),
            "from".to_string(),
            "to".to_string(),
            "delay".to_string(),
            "loss".to_string(),
            "state".to_string(),
        ]];
        let row = |scope: &str, from: &str, to: &str, spec: &LinkSpec| {
            [
                scope.to_string(),
                from.to_string(),
                to.to_string(),
                spec.delay_summary(),
                format!("{}%", spec.loss * 100.0),
                if spec.partitioned { "down" } else { "up" }.to_string(),
            ]
        };
        rows.push(row("default", "same dc", "", &self.intra_datacenter));
        rows.push(row("default", "other dc", "", &self.inter_datacenter));
        for (from, to, spec) in self.datacenter_links.iter() {
            rows.push(row("datacenter", from, to, spec));
        }
        for (from, to, spec) in self.node_links.iter() {
            rows.push(row("node", from, to, spec));
        }
        let mut widths = [0usize; 6];
        for cells in &rows {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for cells in &rows {
            let mut line = String::new();
            for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
                if index + 1 == cells.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if self.partitions.is_empty() {
            out.push_str("partitions: none\n");
        } else {
            out.push_str("partitions:\n");
            for partition in &self.partitions {
                out.push_str(&describe_partition(partition));
                out.push('\n');
            }
        }
        out
    }
}

fn describe_partition(partition: &Partition) -> String {
    let arrow = if partition.symmetric { "<->" } else { "->" };
    let suffix = if partition.symmetric {
        ""
    } else {
        " (one way)"
    };
    format!(
        "  #{} {} {arrow} {}{suffix}",
        partition.id.0,
        describe_group(&partition.side_a),
        describe_group(&partition.side_b)
    )
}

fn describe_group(group: &PartitionGroup) -> String {
    let members: Vec<String> = group
        .datacenters
        .iter()
        .map(|name| format!("dc {name}"))
        .chain(group.nodes.iter().map(|name| format!("node {name}")))
        .collect();
    format!("{{{}}}", members.join(", "))
}
