//! The fuzz targets by name, and the byte decoding each of them uses (`differential`,
//! `lookups`, `requests`; `update` is `lowlevel`'s own).

use std::path::Path;
use std::sync::OnceLock;

use crate::decode::{decode, Config, Program, MAX_OPS};
use crate::generate::Weights;
use crate::zoo;

/// A fuzz target (and its input decoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Differential,
    Lookups,
    Requests,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Differential, Target::Lookups, Target::Requests];

    pub fn name(self) -> &'static str {
        match self {
            Target::Differential => "differential",
            Target::Lookups => "lookups",
            Target::Requests => "requests",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The decoding this target uses (in this process: see [`zoo::selected`] and
    /// [`zoo::generator`]).
    pub fn config(self) -> &'static Config {
        static CONFIGS: OnceLock<[Config; 3]> = OnceLock::new();
        let configs = CONFIGS.get_or_init(|| {
            // The zoo's prepare-failure bug needs `fail-prepare`; the eval baseline draws from
            // the random generator instead of each target's steered one.
            let allow_fail_prepare = zoo::selected().allows_fail_prepare();
            let arch = zoo::selected().arch();
            let random = zoo::generator() == zoo::Generator::Random;
            let config = |weights| Config {
                weights: if random {
                    zoo::Generator::random_weights()
                } else {
                    weights
                },
                allow_fail_prepare,
                max_ops: MAX_OPS,
                arch,
            };
            [
                config(Weights::differential()),
                config(Weights::lookups()),
                config(Weights::requests()),
            ]
        });
        &configs[self as usize]
    }

    /// The target a path belongs to: `.../corpus/<target>/...` or `.../artifacts/<target>/...`.
    pub fn infer(path: &Path) -> Option<Target> {
        let parts: Vec<String> = path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        parts.windows(2).find_map(|w| match w[0].as_str() {
            "corpus" | "artifacts" => Target::from_name(&w[1]),
            _ => None,
        })
    }

    /// Decode an input as this target does.
    pub fn decode(self, data: &[u8]) -> Program {
        decode(self.config(), data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_inferred_from_paths() {
        let t = |p: &str| Target::infer(Path::new(p));
        assert_eq!(t("corpus/lookups/seeds/pc.scenario"), Some(Target::Lookups));
        assert_eq!(
            t("/x/fuzz/artifacts/requests/crash-00"),
            Some(Target::Requests)
        );
        assert_eq!(
            t("fuzz/corpus/differential/abc"),
            Some(Target::Differential)
        );
        assert_eq!(t("/tmp/crash-00"), None);
        assert_eq!(t("corpus/README"), None);
    }
}
