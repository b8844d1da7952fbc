//! From verdicts to an answer: the files to read, or one error naming every problem.

use std::path::{Path, PathBuf};

use super::{Classified, Notice};
use crate::error::{shown, Error};

impl Classified {
    /// The files to read and the warnings (paths joined to `dir`), or one error listing every
    /// entry that looks like data but would not be read.
    pub(crate) fn checked(self, dir: &Path) -> Result<(Vec<PathBuf>, Vec<Notice>), Error> {
        let join = |n: Notice| Notice {
            path: dir.join(n.path),
            reason: n.reason,
        };
        if !self.errors.is_empty() {
            return Err(problems(dir, self.errors.into_iter().map(join).collect()));
        }
        Ok((self.read, self.warnings.into_iter().map(join).collect()))
    }
}

/// One error for every problem at once (paths as shown): `path: reason` for one, a list
/// under the directory for more.
pub(crate) fn problems(dir: &Path, mut notices: Vec<Notice>) -> Error {
    if notices.len() == 1 {
        let n = notices.remove(0);
        return Error::Layout {
            dir: n.path,
            reason: n.reason,
        };
    }
    let list: String = notices
        .iter()
        .map(|n| format!("\n  {}: {}", shown(&n.path), n.reason))
        .collect();
    Error::Layout {
        dir: dir.to_path_buf(),
        reason: format!("{} entries would not be read:{list}", notices.len()),
    }
}
