//! The measured rows, what each is compared with, and how runs are summarised.
//!
//! Every tool row has a floor row measured in the same run (on the same machine, minutes
//! apart at most), and its ratio is computed per run, then the median taken: the machine is
//! shared, so absolute times drift, but a ratio to a baseline measured alongside holds.

use std::collections::BTreeMap;

use serde::Serialize;

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RowId {
    FloorWrite,
    FloorRead,
    FloorParse,
    FloorReadSelected,
    FloorSetSelected,
    FloorSingle,
    FloorPoolPut,
    SyncBaseline,
    SyncInitial,
    SyncNoop,
    SyncChurn,
    SelectGet,
    SelectSet,
    Depool,
}

impl RowId {
    /// In table order.
    pub(crate) const ALL: [RowId; 14] = [
        RowId::FloorWrite,
        RowId::FloorRead,
        RowId::FloorParse,
        RowId::FloorReadSelected,
        RowId::FloorSetSelected,
        RowId::FloorSingle,
        RowId::FloorPoolPut,
        RowId::SyncBaseline,
        RowId::SyncInitial,
        RowId::SyncNoop,
        RowId::SyncChurn,
        RowId::SelectGet,
        RowId::SelectSet,
        RowId::Depool,
    ];

    /// The label in the table.
    pub(crate) fn label(self) -> &'static str {
        match self {
            RowId::FloorWrite => "floor: write all (txn 128 x 8)",
            RowId::FloorRead => "floor: read all (pages 100k)",
            RowId::FloorParse => "floor: parse YAML to values",
            RowId::FloorReadSelected => "floor: read 10%",
            RowId::FloorSetSelected => "floor: read+write 10%",
            RowId::FloorSingle => "floor: get+put 1 key",
            RowId::FloorPoolPut => "floor: read pool + guarded put",
            RowId::SyncBaseline => "conftool-sync --version (baseline)",
            RowId::SyncInitial => "conftool-sync initial",
            RowId::SyncNoop => "conftool-sync no-op",
            RowId::SyncChurn => "conftool-sync 1% nodes changed",
            RowId::SelectGet => "confctl select 10% get",
            RowId::SelectSet => "confctl select 10% set/pooled=no",
            RowId::Depool => "confctl depool 1 object",
        }
    }

    /// The floor rows whose summed time this row is compared with (empty for floor rows).
    pub(crate) fn baseline(self) -> &'static [RowId] {
        match self {
            RowId::SyncInitial => &[RowId::FloorWrite],
            RowId::SyncNoop | RowId::SyncChurn => &[RowId::FloorRead, RowId::FloorParse],
            RowId::SelectGet => &[RowId::FloorReadSelected],
            RowId::SelectSet => &[RowId::FloorSetSelected],
            // The depool is judged atomically against its whole pool (issue 17): what that
            // costs at the least, the pool read and the guarded put, is its floor.
            RowId::Depool => &[RowId::FloorPoolPut],
            _ => &[],
        }
    }

    /// A second floor the row is also compared with (shown under the table): for the
    /// depool, one key read and put back, without the pool read its threshold needs.
    pub(crate) fn second_baseline(self) -> Option<(RowId, &'static str)> {
        match self {
            RowId::Depool => Some((RowId::FloorSingle, "floor get+put (no pool read)")),
            _ => None,
        }
    }

    /// The baseline, short, for the table.
    pub(crate) fn baseline_label(self) -> &'static str {
        match self {
            RowId::SyncInitial => "floor write",
            RowId::SyncNoop | RowId::SyncChurn => "floor read + parse",
            RowId::SelectGet => "floor read 10%",
            RowId::SelectSet => "floor read+write 10%",
            RowId::Depool => "floor pool + put",
            _ => "",
        }
    }

    /// Whether the row's work grows with the fleet (for the scaling check).
    pub(crate) fn scales(self) -> bool {
        !matches!(
            self,
            RowId::FloorSingle | RowId::FloorPoolPut | RowId::Depool | RowId::SyncBaseline
        )
    }

    /// The rows whose memory is shown per object (over [`RowId::SyncBaseline`]).
    pub(crate) const PER_OBJECT: [RowId; 3] =
        [RowId::SyncInitial, RowId::SyncNoop, RowId::SyncChurn];

    /// Whether the row runs one of the tools (for the memory target).
    pub(crate) fn is_tool(self) -> bool {
        self.baseline().iter().next().is_some()
    }
}

/// One measurement of one row in one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Sample {
    /// Objects the row handles.
    pub objects: usize,
    /// Seconds (whole process; floor rows minus their key-list generation).
    pub wall_s: f64,
    /// Peak RSS of the process, bytes.
    pub max_rss: u64,
}

/// One run: every row once.
pub(crate) type Run = BTreeMap<RowId, Sample>;

/// A row summarised over the runs.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub id: RowId,
    pub label: &'static str,
    pub objects: usize,
    /// Median over runs.
    pub wall_s: f64,
    /// Every run's time, in run order.
    pub wall_s_runs: Vec<f64>,
    pub objects_per_s: f64,
    /// Largest over runs.
    pub max_rss: u64,
    /// Median over runs of (this row's time / its baseline's time in the same run).
    pub ratio: Option<f64>,
    pub baseline: &'static str,
    /// Median over runs of this row's time / its second baseline's time
    /// ([`RowId::second_baseline`]), if it has one.
    pub ratio2: Option<f64>,
    pub baseline2: &'static str,
}

/// The median (mean of the middle two for an even count); 0 for none.
pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Summarise runs row by row.
pub(crate) fn summarise(runs: &[Run]) -> Vec<Row> {
    RowId::ALL
        .iter()
        .filter_map(|&id| {
            let samples: Vec<&Sample> = runs.iter().filter_map(|r| r.get(&id)).collect();
            let first = samples.first()?;
            let walls: Vec<f64> = samples.iter().map(|s| s.wall_s).collect();
            let ratios: Vec<f64> = runs
                .iter()
                .filter_map(|r| {
                    let base: f64 = id
                        .baseline()
                        .iter()
                        .map(|b| r.get(b).map(|s| s.wall_s))
                        .sum::<Option<f64>>()?;
                    let own = r.get(&id)?.wall_s;
                    (base > 0.0 && !id.baseline().is_empty()).then_some(own / base)
                })
                .collect();
            let second = id.second_baseline();
            let ratios2: Vec<f64> = runs
                .iter()
                .filter_map(|r| {
                    let base = r.get(&second?.0)?.wall_s;
                    let own = r.get(&id)?.wall_s;
                    (base > 0.0).then_some(own / base)
                })
                .collect();
            let wall_s = median(walls.clone());
            Some(Row {
                id,
                label: id.label(),
                objects: first.objects,
                wall_s,
                wall_s_runs: walls,
                objects_per_s: if wall_s > 0.0 {
                    first.objects as f64 / wall_s
                } else {
                    0.0
                },
                max_rss: samples.iter().map(|s| s.max_rss).max().unwrap_or(0),
                ratio: (!ratios.is_empty()).then(|| median(ratios)),
                baseline: id.baseline_label(),
                ratio2: (!ratios2.is_empty()).then(|| median(ratios2)),
                baseline2: second.map_or("", |(_, label)| label),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(wall_s: f64) -> Sample {
        Sample {
            objects: 100,
            wall_s,
            max_rss: 1,
        }
    }

    #[test]
    fn ratios_are_per_run_then_median() {
        let runs: Vec<Run> = [(1.0, 2.0), (2.0, 3.0), (1.0, 5.0)]
            .iter()
            .map(|&(floor, sync)| {
                Run::from([
                    (RowId::FloorWrite, sample(floor)),
                    (RowId::SyncInitial, sample(sync)),
                ])
            })
            .collect();
        let rows = summarise(&runs);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].ratio, None);
        assert_eq!(rows[1].wall_s, 3.0);
        // Per-run ratios 2.0, 1.5, 5.0: the median is 2.0, not 3.0 / 1.0.
        assert_eq!(rows[1].ratio, Some(2.0));
    }

    #[test]
    fn median_of_even_and_empty() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
