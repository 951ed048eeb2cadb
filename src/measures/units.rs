//! Units: how CMS groups a provider's eligible claims of a measure into the
//! instances it counts, and which one marker each instance keeps.
//!
//! The store hands [`decide`] the claims of one *group*: one stratum, one
//! provider (TIN and NPI), one patient, and one performance year, or one date
//! of service for the measures whose units live within a date. What the group
//! holds, the calculation type turns into units:
//!
//! | type | units of a group | marker |
//! |---|---|---|
//! | patient process | one | the most advantageous of all its claims |
//! | patient intermediate | one | of the claims carrying a marker (all, if none do), those of the latest date; the most advantageous among them |
//! | procedure | one (the group is one date) | the most advantageous |
//! | visit | one (the group is one date), counted once per eligible procedure line | the most advantageous |
//! | intersecting diagnosis | one per episode: claims sharing a relevant diagnosis, transitively | the most advantageous in the episode |

use jiff::civil::Date;

use super::{
    definition::{CalculationType, PerformanceKind},
    values::Diagnosis,
};

/// One eligible claim of a group, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedClaim {
    /// Its date of service.
    pub service_date: Date,
    /// Its most advantageous marker, if any.
    pub marker: Option<PerformanceKind>,
    /// Its eligible procedure lines.
    pub weight: u32,
    /// Its diagnoses that the measure names, which tie episodes together.
    pub diagnoses: Vec<Diagnosis>,
}

/// One unit of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The marker it keeps; `None` is unreported.
    pub marker: Option<PerformanceKind>,
    /// How many times it counts.
    pub weight: u32,
    /// Its claims, as positions in the group.
    pub members: Vec<usize>,
    /// Its earliest date of service.
    pub first: Date,
    /// Its latest date of service.
    pub last: Date,
}

/// The units `claims` (one group, in date order) form under a measure of
/// `calculation`, inverse or not; units in the order of their first claims.
pub fn decide(calculation: CalculationType, inverse: bool, claims: &[MarkedClaim]) -> Vec<Unit> {
    if claims.is_empty() {
        return Vec::new();
    }
    let everyone: Vec<usize> = (0..claims.len()).collect();
    match calculation {
        CalculationType::PatientProcess | CalculationType::Procedure => {
            vec![unit(claims, everyone, inverse, 1)]
        }
        CalculationType::Visit => {
            let weight = claims.iter().map(|claim| claim.weight).sum();
            vec![unit(claims, everyone, inverse, weight)]
        }
        CalculationType::PatientIntermediate => {
            let reported: Vec<usize> = everyone
                .iter()
                .copied()
                .filter(|&index| claims[index].marker.is_some())
                .collect();
            let pool = if reported.is_empty() {
                &everyone
            } else {
                &reported
            };
            let latest = pool.iter().map(|&index| claims[index].service_date).max();
            let deciding = pool
                .iter()
                .copied()
                .filter(|&index| Some(claims[index].service_date) == latest);
            let mut whole = unit(claims, everyone.clone(), inverse, 1);
            whole.marker = best(deciding.map(|index| claims[index].marker), inverse);
            vec![whole]
        }
        CalculationType::IntersectingDiagnosis => episodes(claims)
            .into_iter()
            .map(|members| unit(claims, members, inverse, 1))
            .collect(),
    }
}

/// The unit of `members`, keeping their most advantageous marker.
fn unit(claims: &[MarkedClaim], members: Vec<usize>, inverse: bool, weight: u32) -> Unit {
    let dates = members.iter().map(|&index| claims[index].service_date);
    let first = dates.clone().min().unwrap_or(Date::MIN);
    let last = dates.max().unwrap_or(Date::MIN);
    Unit {
        marker: best(members.iter().map(|&index| claims[index].marker), inverse),
        weight,
        members,
        first,
        last,
    }
}

/// The most advantageous of `markers`, CMS's way; `None` when none is set.
fn best(
    markers: impl Iterator<Item = Option<PerformanceKind>>,
    inverse: bool,
) -> Option<PerformanceKind> {
    markers.flatten().min_by_key(|marker| marker.rank(inverse))
}

/// The episodes of `claims`: claims that share a diagnosis are in one, and so
/// transitively are claims linked through others. Each episode's positions
/// ascend, and episodes come in the order of their first claims.
fn episodes(claims: &[MarkedClaim]) -> Vec<Vec<usize>> {
    // Union-find over positions, each set named by its smallest position.
    let mut parent: Vec<usize> = (0..claims.len()).collect();
    fn root(parent: &mut [usize], mut index: usize) -> usize {
        while parent[index] != index {
            parent[index] = parent[parent[index]];
            index = parent[index];
        }
        index
    }
    for later in 0..claims.len() {
        for earlier in 0..later {
            let shared = claims[later]
                .diagnoses
                .iter()
                .any(|diagnosis| claims[earlier].diagnoses.contains(diagnosis));
            if shared {
                let (a, b) = (root(&mut parent, earlier), root(&mut parent, later));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut episodes: Vec<Vec<usize>> = Vec::new();
    let mut episode_of_root = vec![usize::MAX; claims.len()];
    for index in 0..claims.len() {
        let root = root(&mut parent, index);
        if episode_of_root[root] == usize::MAX {
            episode_of_root[root] = episodes.len();
            episodes.push(Vec::new());
        }
        episodes[episode_of_root[root]].push(index);
    }
    episodes
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use PerformanceKind::*;

    fn claim(day: i8, marker: Option<PerformanceKind>, diagnoses: &[&str]) -> MarkedClaim {
        MarkedClaim {
            service_date: date(2025, 3, day),
            marker,
            weight: 1,
            diagnoses: diagnoses
                .iter()
                .map(|d| Diagnosis::parse(d).unwrap())
                .collect(),
        }
    }

    fn markers(units: &[Unit]) -> Vec<Option<PerformanceKind>> {
        units.iter().map(|unit| unit.marker).collect()
    }

    #[test]
    fn a_patients_claims_of_a_year_make_one_unit_with_the_best_marker() {
        let claims = [
            claim(1, Some(NotMet), &[]),
            claim(2, Some(Met), &[]),
            claim(3, Some(Exclusion), &[]),
            claim(4, None, &[]),
        ];
        let units = decide(CalculationType::PatientProcess, false, &claims);
        assert_eq!(markers(&units), [Some(Met)]);
        assert_eq!(
            (units[0].first, units[0].last),
            (date(2025, 3, 1), date(2025, 3, 4))
        );
        // Inverse: not met is the most advantageous.
        let units = decide(CalculationType::PatientProcess, true, &claims);
        assert_eq!(markers(&units), [Some(NotMet)]);
    }

    #[test]
    fn exclusion_beats_exception_and_exception_beats_not_met() {
        let claims = [
            claim(1, Some(Exception), &[]),
            claim(2, Some(Exclusion), &[]),
        ];
        assert_eq!(
            markers(&decide(CalculationType::PatientProcess, false, &claims)),
            [Some(Exclusion)]
        );
        let claims = [claim(1, Some(NotMet), &[]), claim(2, Some(Exception), &[])];
        assert_eq!(
            markers(&decide(CalculationType::PatientProcess, false, &claims)),
            [Some(Exception)]
        );
        // Inverse: exception, then exclusion, then met.
        let claims = [claim(1, Some(Met), &[]), claim(2, Some(Exclusion), &[])];
        assert_eq!(
            markers(&decide(CalculationType::PatientProcess, true, &claims)),
            [Some(Exclusion)]
        );
    }

    #[test]
    fn the_latest_reported_result_decides_an_intermediate_measure_even_when_worse() {
        let claims = [
            claim(1, Some(Met), &[]),
            claim(5, Some(NotMet), &[]),
            claim(9, None, &[]),
        ];
        let units = decide(CalculationType::PatientIntermediate, false, &claims);
        assert_eq!(markers(&units), [Some(NotMet)]);
        assert_eq!(
            units[0].members,
            [0, 1, 2],
            "every claim belongs to the unit"
        );
        // Two results on the latest date: the better one.
        let claims = [claim(5, Some(NotMet), &[]), claim(5, Some(Met), &[])];
        assert_eq!(
            markers(&decide(
                CalculationType::PatientIntermediate,
                false,
                &claims
            )),
            [Some(Met)]
        );
        // None reported: unreported.
        let claims = [claim(1, None, &[]), claim(2, None, &[])];
        assert_eq!(
            markers(&decide(
                CalculationType::PatientIntermediate,
                false,
                &claims
            )),
            [None]
        );
    }

    #[test]
    fn a_visit_counts_once_per_eligible_line() {
        let mut claims = [claim(1, Some(Met), &[]), claim(1, None, &[])];
        claims[0].weight = 2;
        let units = decide(CalculationType::Visit, false, &claims);
        assert_eq!(
            (units.len(), units[0].weight, units[0].marker),
            (1, 3, Some(Met))
        );
        let units = decide(CalculationType::Procedure, false, &claims);
        assert_eq!((units.len(), units[0].weight), (1, 1));
    }

    #[test]
    fn episodes_join_claims_sharing_a_diagnosis_transitively() {
        // A and B share nothing, the third links them; a fourth stands alone.
        let claims = [
            claim(1, None, &["S22.000A"]),
            claim(2, Some(Met), &["S32.000A"]),
            claim(3, None, &["S22.000A", "S32.000A"]),
            claim(4, Some(NotMet), &["S72.001A"]),
        ];
        let units = decide(CalculationType::IntersectingDiagnosis, false, &claims);
        assert_eq!(
            units
                .iter()
                .map(|unit| unit.members.clone())
                .collect::<Vec<_>>(),
            [vec![0, 1, 2], vec![3]]
        );
        assert_eq!(markers(&units), [Some(Met), Some(NotMet)]);
        // A, B, B: two episodes, not three (CMS's engine compared each claim
        // with the first episode only).
        let claims = [
            claim(1, None, &["S22.000A"]),
            claim(2, None, &["S32.000A"]),
            claim(3, None, &["S32.000A"]),
        ];
        assert_eq!(
            decide(CalculationType::IntersectingDiagnosis, false, &claims).len(),
            2
        );
    }
}
