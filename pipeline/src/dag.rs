//! The pipeline DAG over petgraph, with `upstream_blocks` as the truth (spec 2.5).
//!
//! Nodes are block uuids in file order; an edge `a -> b` means `a` is an upstream block of `b`
//! (data flows from `a` to `b`). Unknown uuids are dropped, as Mage drops them. Orders are
//! stable: among blocks that are ready together, file order wins, so the same file always
//! gives the same plan.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};

#[derive(Clone, Debug, Default)]
pub struct Dag {
    graph: DiGraph<String, ()>,
    by_uuid: HashMap<String, NodeIndex>,
    /// Upstream blocks of each node in `upstream_blocks` order (petgraph keeps no order).
    upstream: Vec<Vec<NodeIndex>>,
}

impl Dag {
    /// Builds the graph from `(uuid, upstream uuids)` in file order. A repeated uuid keeps its
    /// first entry; unknown upstream uuids and repeated edges are ignored.
    pub fn build<'a>(blocks: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>) -> Dag {
        let blocks: Vec<(&str, Vec<&str>)> = blocks.into_iter().collect();
        let mut dag = Dag::default();
        for (uuid, _) in &blocks {
            if !dag.by_uuid.contains_key(*uuid) {
                let idx = dag.graph.add_node((*uuid).to_owned());
                dag.by_uuid.insert((*uuid).to_owned(), idx);
                dag.upstream.push(Vec::new());
            }
        }
        let mut seen = BTreeSet::new();
        for (uuid, upstream) in &blocks {
            let node = dag.by_uuid[*uuid];
            if !seen.insert(node) {
                continue;
            }
            for parent in upstream {
                let Some(&parent) = dag.by_uuid.get(*parent) else { continue };
                if dag.upstream[node.index()].contains(&parent) {
                    continue;
                }
                dag.upstream[node.index()].push(parent);
                dag.graph.add_edge(parent, node, ());
            }
        }
        dag
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn contains(&self, uuid: &str) -> bool {
        self.by_uuid.contains_key(uuid)
    }

    /// Block uuids in file order.
    pub fn uuids(&self) -> impl Iterator<Item = &str> {
        self.graph.node_indices().map(|idx| self.graph[idx].as_str())
    }

    /// Edges `(upstream, downstream)`, in file order of the downstream block.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.graph.node_indices().flat_map(move |node| {
            self.upstream[node.index()].iter().map(move |&parent| (self.graph[parent].as_str(), self.graph[node].as_str()))
        })
    }

    /// The known upstream blocks of `uuid`, in `upstream_blocks` order.
    pub fn upstream(&self, uuid: &str) -> Vec<&str> {
        self.by_uuid
            .get(uuid)
            .map_or_else(Vec::new, |&node| self.upstream[node.index()].iter().map(|&idx| self.graph[idx].as_str()).collect())
    }

    /// The blocks that list `uuid` upstream, in file order.
    pub fn downstream(&self, uuid: &str) -> Vec<&str> {
        let Some(&node) = self.by_uuid.get(uuid) else { return Vec::new() };
        let mut children: Vec<NodeIndex> = self.graph.neighbors_directed(node, Direction::Outgoing).collect();
        children.sort();
        children.into_iter().map(|idx| self.graph[idx].as_str()).collect()
    }

    /// Every block `uuid` depends on, directly or not, in file order.
    pub fn ancestors(&self, uuid: &str) -> Vec<&str> {
        self.reach(uuid, Direction::Incoming)
    }

    /// Every block that depends on `uuid`, directly or not, in file order.
    pub fn descendants(&self, uuid: &str) -> Vec<&str> {
        self.reach(uuid, Direction::Outgoing)
    }

    fn reach(&self, uuid: &str, direction: Direction) -> Vec<&str> {
        let Some(&start) = self.by_uuid.get(uuid) else { return Vec::new() };
        let mut found = BTreeSet::new();
        match direction {
            Direction::Outgoing => {
                let mut dfs = Dfs::new(&self.graph, start);
                while let Some(node) = dfs.next(&self.graph) {
                    found.insert(node);
                }
            }
            Direction::Incoming => {
                let reversed = Reversed(&self.graph);
                let mut dfs = Dfs::new(reversed, start);
                while let Some(node) = dfs.next(reversed) {
                    found.insert(node);
                }
            }
        }
        found.remove(&start);
        found.into_iter().map(|idx| self.graph[idx].as_str()).collect()
    }

    /// A topological order (every block after its upstream blocks; ties in file order), or the
    /// cycles that prevent one.
    pub fn topo_order(&self) -> Result<Vec<&str>, Vec<Vec<String>>> {
        let mut indegree: Vec<usize> = self.upstream.iter().map(Vec::len).collect();
        let mut ready: BinaryHeap<Reverse<NodeIndex>> =
            self.graph.node_indices().filter(|idx| indegree[idx.index()] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(Reverse(node)) = ready.pop() {
            order.push(self.graph[node].as_str());
            for child in self.graph.neighbors_directed(node, Direction::Outgoing) {
                indegree[child.index()] -= 1;
                if indegree[child.index()] == 0 {
                    ready.push(Reverse(child));
                }
            }
        }
        if order.len() == self.len() { Ok(order) } else { Err(self.cycles()) }
    }

    /// Blocks grouped by depth: layer 0 has no upstream blocks, layer k+1 depends on layer k.
    /// Blocks on a cycle are left out.
    pub fn layers(&self) -> Vec<Vec<&str>> {
        let order = match self.topo_order() {
            Ok(order) => order,
            Err(_) => return self.layers_without_cycles(),
        };
        let mut depth: HashMap<&str, usize> = HashMap::new();
        let mut layers: Vec<Vec<&str>> = Vec::new();
        for uuid in order {
            let d = self.upstream(uuid).iter().map(|parent| depth[parent] + 1).max().unwrap_or(0);
            depth.insert(uuid, d);
            if layers.len() <= d {
                layers.resize(d + 1, Vec::new());
            }
            layers[d].push(uuid);
        }
        layers
    }

    fn layers_without_cycles(&self) -> Vec<Vec<&str>> {
        let on_cycle: BTreeSet<String> = self.cycles().into_iter().flatten().collect();
        let acyclic = Dag::build(
            self.uuids()
                .filter(|uuid| !on_cycle.contains(*uuid))
                .map(|uuid| (uuid, self.upstream(uuid).into_iter().filter(|parent| !on_cycle.contains(*parent)).collect())),
        );
        // Re-borrow names from `self` so the result lives as long as `self`.
        acyclic.layers().into_iter().map(|layer| layer.into_iter().map(|uuid| self.graph[self.by_uuid[uuid]].as_str()).collect()).collect()
    }

    /// Every cycle, once each, as the blocks on it in data-flow order, starting with the block
    /// that comes first in the file.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let mut cycles = Vec::new();
        let mut components = tarjan_scc(&self.graph);
        components.iter_mut().for_each(|component| component.sort());
        components.sort();
        for component in components {
            let start = component[0];
            let is_cycle = component.len() > 1 || self.upstream[start.index()].contains(&start);
            if !is_cycle {
                continue;
            }
            let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
            if let Some(path) = self.path_back(start, &members) {
                cycles.push(path.into_iter().map(|idx| self.graph[idx].clone()).collect());
            }
        }
        cycles
    }

    /// A shortest path `start -> ... -> start` inside one strongly connected component.
    fn path_back(&self, start: NodeIndex, members: &BTreeSet<NodeIndex>) -> Option<Vec<NodeIndex>> {
        let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            let mut children: Vec<NodeIndex> =
                self.graph.neighbors_directed(node, Direction::Outgoing).filter(|child| members.contains(child)).collect();
            children.sort();
            for child in children {
                if child == start {
                    let mut path = vec![node];
                    let mut cursor = node;
                    while cursor != start {
                        cursor = previous[&cursor];
                        path.push(cursor);
                    }
                    path.reverse();
                    return Some(path);
                }
                if let std::collections::hash_map::Entry::Vacant(entry) = previous.entry(child) {
                    entry.insert(node);
                    queue.push_back(child);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dag(spec: &[(&'static str, &[&'static str])]) -> Dag {
        Dag::build(spec.iter().map(|(uuid, upstream)| (*uuid, upstream.to_vec())))
    }

    #[test]
    fn orders_layers_and_reach() {
        let dag = dag(&[("export", &["clean", "load"]), ("load", &[]), ("clean", &["load", "nope"]), ("side", &[])]);
        assert_eq!(dag.topo_order().unwrap(), ["load", "clean", "export", "side"]);
        assert_eq!(dag.layers(), vec![vec!["load", "side"], vec!["clean"], vec!["export"]]);
        assert_eq!(dag.upstream("export"), ["clean", "load"]);
        assert_eq!(dag.downstream("load"), ["export", "clean"]);
        assert_eq!(dag.ancestors("export"), ["load", "clean"]);
        assert_eq!(dag.descendants("load"), ["export", "clean"]);
        assert!(dag.cycles().is_empty());
    }

    #[test]
    fn names_every_block_on_a_cycle_in_order() {
        let dag = dag(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &["d"]), ("e", &["a"])]);
        assert_eq!(dag.cycles(), vec![vec!["a", "b", "c"], vec!["d"]]);
        assert!(dag.topo_order().is_err());
        assert_eq!(dag.layers(), vec![vec!["e"]]);
    }

    proptest! {
        /// Cycle detection agrees with topological sorting on random graphs.
        #[test]
        fn cycles_agree_with_topological_sort(n in 1usize..12, edges in proptest::collection::vec((0usize..12, 0usize..12), 0..30)) {
            let names: Vec<String> = (0..n).map(|i| format!("b{i}")).collect();
            let blocks = (0..n).map(|i| {
                let upstream = edges.iter().filter(|(_, to)| *to == i).filter(|(from, _)| *from < n).map(|(from, _)| names[*from].as_str()).collect();
                (names[i].as_str(), upstream)
            });
            let dag = Dag::build(blocks);
            let cycles = dag.cycles();
            match dag.topo_order() {
                Ok(order) => {
                    prop_assert!(cycles.is_empty());
                    let pos: HashMap<&str, usize> = order.iter().enumerate().map(|(i, u)| (*u, i)).collect();
                    for (from, to) in dag.edges() {
                        prop_assert!(pos[from] < pos[to]);
                    }
                }
                Err(found) => {
                    prop_assert!(!found.is_empty());
                    for cycle in &found {
                        for (i, uuid) in cycle.iter().enumerate() {
                            let next = &cycle[(i + 1) % cycle.len()];
                            prop_assert!(dag.upstream(next).contains(&uuid.as_str()));
                        }
                    }
                }
            }
        }
    }
}
