//! Which interfaces to watch: the include and exclude patterns, and stacked
//! devices whose packets their lower devices already show.

use super::links::Link;
use crate::config::Glob;

/// Kinds whose packets also pass their lower device (`IFLA_LINK`).
const STACKED_ON_LOWER: &[&str] = &["vlan", "macvlan", "macvtap", "ipvlan", "ipvtap"];
/// Kinds whose packets also pass their ports (`IFLA_MASTER` of the ports).
const MASTERS: &[&str] = &["bridge", "bond", "team"];

/// Why an interface is not watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    NotIncluded,
    Excluded,
    /// Its packets are counted on this lower device or port.
    Stacked {
        on: String,
    },
}

/// Picks the links to watch. Returns (watch, skipped-with-reason).
pub fn select<'l>(
    links: &'l [Link],
    include: &[Glob],
    exclude: &[Glob],
    skip_stacked: bool,
) -> (Vec<&'l Link>, Vec<(&'l Link, Skipped)>) {
    let mut watch = Vec::new();
    let mut skipped = Vec::new();
    let candidate = |l: &Link| -> Result<(), Skipped> {
        if !include.is_empty() && !include.iter().any(|g| g.matches(&l.name)) {
            return Err(Skipped::NotIncluded);
        }
        if exclude.iter().any(|g| g.matches(&l.name)) {
            return Err(Skipped::Excluded);
        }
        Ok(())
    };
    let is_candidate = |ifindex: u32| {
        links
            .iter()
            .find(|l| l.ifindex == ifindex)
            .is_some_and(|l| candidate(l).is_ok())
    };
    for l in links {
        if let Err(why) = candidate(l) {
            skipped.push((l, why));
            continue;
        }
        if skip_stacked {
            let kind = l.kind.as_deref().unwrap_or("");
            if STACKED_ON_LOWER.contains(&kind) {
                if let Some(lower) = l.lower.filter(|&i| is_candidate(i)) {
                    let on = name_of(links, lower);
                    skipped.push((l, Skipped::Stacked { on }));
                    continue;
                }
            }
            if MASTERS.contains(&kind) {
                if let Some(port) = links
                    .iter()
                    .find(|p| p.master == Some(l.ifindex) && candidate(p).is_ok())
                {
                    skipped.push((
                        l,
                        Skipped::Stacked {
                            on: port.name.clone(),
                        },
                    ));
                    continue;
                }
            }
        }
        watch.push(l);
    }
    (watch, skipped)
}

fn name_of(links: &[Link], ifindex: u32) -> String {
    links
        .iter()
        .find(|l| l.ifindex == ifindex)
        .map(|l| l.name.clone())
        .unwrap_or_else(|| format!("if{ifindex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(
        ifindex: u32,
        name: &str,
        kind: Option<&str>,
        lower: Option<u32>,
        master: Option<u32>,
    ) -> Link {
        Link {
            ifindex,
            name: name.into(),
            hatype: 1,
            up: true,
            lower,
            master,
            kind: kind.map(String::from),
        }
    }

    fn g(s: &[&str]) -> Vec<Glob> {
        s.iter().map(|p| Glob::new(p).unwrap()).collect()
    }

    fn names(v: &[&Link]) -> Vec<String> {
        v.iter().map(|l| l.name.clone()).collect()
    }

    fn router() -> Vec<Link> {
        vec![
            link(1, "lo", None, None, None),
            link(2, "eth0", None, None, Some(6)),
            link(3, "eth1", None, None, Some(6)),
            link(4, "eth0.100", Some("vlan"), Some(2), None),
            link(5, "veth1", Some("veth"), None, None),
            link(6, "bond0", Some("bond"), None, None),
            link(7, "gre1", Some("gre"), Some(2), None),
        ]
    }

    #[test]
    fn default_watches_all_but_lo_and_stacked() {
        let links = router();
        let (w, s) = select(&links, &[], &g(&["lo"]), true);
        assert_eq!(names(&w), ["eth0", "eth1", "veth1", "gre1"]);
        assert!(
            s.iter()
                .any(|(l, why)| l.name == "eth0.100"
                    && *why == Skipped::Stacked { on: "eth0".into() })
        );
        assert!(
            s.iter()
                .any(|(l, why)| l.name == "bond0" && matches!(why, Skipped::Stacked { .. }))
        );
        assert!(
            s.iter()
                .any(|(l, why)| l.name == "lo" && *why == Skipped::Excluded)
        );
    }

    #[test]
    fn stacked_device_is_watched_when_its_lower_is_not() {
        let links = router();
        let (w, _) = select(&links, &[], &g(&["lo", "eth0"]), true);
        assert!(names(&w).contains(&"eth0.100".to_string()));
    }

    #[test]
    fn skip_stacked_off_watches_everything_included() {
        let links = router();
        let (w, _) = select(&links, &[], &[], false);
        assert_eq!(w.len(), links.len());
    }

    #[test]
    fn include_list_with_globs() {
        let links = router();
        let (w, s) = select(&links, &g(&["eth*"]), &[], true);
        assert_eq!(names(&w), ["eth0", "eth1"]);
        assert!(
            s.iter()
                .any(|(l, why)| l.name == "veth1" && *why == Skipped::NotIncluded)
        );
    }

    #[test]
    fn exclude_wins_over_include() {
        let links = router();
        let (w, _) = select(&links, &g(&["eth*"]), &g(&["eth1"]), true);
        assert_eq!(names(&w), ["eth0"]);
    }
}
