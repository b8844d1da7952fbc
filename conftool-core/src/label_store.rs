//! Reading node labels (racks, rows: [`conftool_model::labels`]) from etcd, for the tools
//! that act on a group of hosts. Labels are written only by `conftool-sync`, from the data
//! directory; here they are read, each read one range request.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::labels::{decode_labels, LabelSelector, Labels};
use crate::names::{Datacenter, NodeName};
use crate::store::Store;

impl Store {
    /// Every node's labels in `dc` (or in every datacenter), from one range read of
    /// `<namespace>/v1/labels/[<dc>/]` (paged at one revision if it is large, as
    /// [`Store::read_prefix`]). Nodes without labels are absent. A stored value that
    /// is not a node's labels fails the read ([`crate::ModelError::MalformedValue`], naming
    /// the key): a group of hosts read with one missing is worse than no answer.
    pub async fn labels(
        &self,
        dc: Option<&Datacenter>,
    ) -> Result<BTreeMap<(Datacenter, NodeName), Labels>, Error> {
        let snap = self
            .read_prefix(&self.keyspace().labels_prefix_for(dc))
            .await?;
        Ok(decode_labels(self.keyspace(), &snap)?)
    }

    /// The nodes in `dc` (or in any datacenter) whose labels `selector` matches, sorted,
    /// each once; one range read ([`Store::labels`]). Rack and row names are usually
    /// per-datacenter (`B4` exists in eqiad and in codfw), so a group verb should give a
    /// datacenter.
    ///
    /// ```no_run
    /// # async fn demo(store: &conftool_core::Store) -> Result<(), Box<dyn std::error::Error>> {
    /// use conftool_core::LabelSelector;
    /// let rack: LabelSelector = "rack=B4".parse()?;
    /// let hosts = store.hosts_with_labels(Some(&"eqiad".parse()?), &rack).await?;
    /// # Ok(()) }
    /// ```
    pub async fn hosts_with_labels(
        &self,
        dc: Option<&Datacenter>,
        selector: &LabelSelector,
    ) -> Result<Vec<NodeName>, Error> {
        let mut hosts: Vec<NodeName> = self
            .labels(dc)
            .await?
            .into_iter()
            .filter(|(_, labels)| selector.matches(labels))
            .map(|((_, node), _)| node)
            .collect();
        hosts.sort();
        hosts.dedup();
        Ok(hosts)
    }
}
