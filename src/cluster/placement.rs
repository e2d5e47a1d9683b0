//! Where a new partition's replicas go: Kafka's `StripedReplicaPlacer`, the placer a KRaft
//! controller uses for CreateTopics and CreatePartitions without explicit assignments.
//!
//! Brokers are grouped by rack; each partition takes its first (leader) replica from the next
//! rack in turn that has an unfenced broker, then one replica from each following rack, so
//! leaders and replicas are striped evenly over racks and brokers. Within a rack, each broker
//! list starts at a random offset and rotates by one each round; after as many partitions as
//! there are unfenced brokers the racks and brokers are shuffled, so that the same assignments
//! do not repeat. Fenced brokers are used only when unfenced ones are not enough.
//!
//! The randomness is a [`PlacementRandom`]: the broker uses a seeded xorshift; the tests use
//! Kafka's own `MockRandom` through Java's `Random.nextInt(bound)`, so Kafka's test vectors
//! (`StripedReplicaPlacerTest`) carry over number for number.

/// A broker that may hold replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsableBroker {
    pub id: i32,
    pub rack: Option<String>,
    pub fenced: bool,
}

/// `java.util.Random.nextInt(bound)`'s contract: uniform in `0..bound`.
pub trait PlacementRandom {
    fn next_int(&mut self, bound: i32) -> i32;
}

/// Why no placement was possible (Kafka's `InvalidReplicationFactorException` messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementError(pub String);

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Replicas for `partitions` new partitions of `replication_factor` replicas each; the first
/// replica of each is its preferred leader.
pub fn place(
    random: &mut dyn PlacementRandom,
    partitions: usize,
    replication_factor: i32,
    brokers: &[UsableBroker],
) -> Result<Vec<Vec<i32>>, PlacementError> {
    let mut racks = RackList::new(random, brokers);
    check_positive(replication_factor)?;
    check_unfenced(racks.unfenced)?;
    check_enough(replication_factor, racks.total)?;
    (0..partitions)
        .map(|_| racks.place(random, replication_factor))
        .collect()
}

fn check_positive(rf: i32) -> Result<(), PlacementError> {
    if rf <= 0 {
        return Err(PlacementError(format!(
            "Invalid replication factor {rf}: the replication factor must be positive."
        )));
    }
    Ok(())
}

fn check_unfenced(unfenced: usize) -> Result<(), PlacementError> {
    if unfenced == 0 {
        return Err(PlacementError("All brokers are currently fenced.".into()));
    }
    Ok(())
}

fn check_enough(rf: i32, total: usize) -> Result<(), PlacementError> {
    if rf as usize > total {
        return Err(PlacementError(format!(
            "The target replication factor of {rf} cannot be reached because only {total} broker(s) are registered."
        )));
    }
    Ok(())
}

/// One rack's brokers, fenced or not, walked from a rotating offset.
#[derive(Default, Debug)]
struct BrokerList {
    brokers: Vec<i32>,
    index: usize,
    offset: usize,
    epoch: u32,
}

impl BrokerList {
    fn initialize(&mut self, random: &mut dyn PlacementRandom) {
        if !self.brokers.is_empty() {
            self.brokers.sort_unstable();
            self.offset = random.next_int(self.brokers.len() as i32) as usize;
        }
    }

    fn shuffle(&mut self, random: &mut dyn PlacementRandom) {
        shuffle(&mut self.brokers, random);
    }

    /// The next broker of this round (`epoch`), or None when the round has used them all.
    fn next(&mut self, epoch: u32) -> Option<i32> {
        if self.brokers.is_empty() {
            return None;
        }
        if self.epoch != epoch {
            self.epoch = epoch;
            self.index = 0;
            self.offset = (self.offset + 1) % self.brokers.len();
        }
        if self.index >= self.brokers.len() {
            return None;
        }
        let b = self.brokers[(self.index + self.offset) % self.brokers.len()];
        self.index += 1;
        Some(b)
    }
}

#[derive(Default, Debug)]
struct Rack {
    fenced: BrokerList,
    unfenced: BrokerList,
}

impl Rack {
    fn next(&mut self, epoch: u32) -> Option<i32> {
        self.unfenced
            .next(epoch)
            .or_else(|| self.fenced.next(epoch))
    }
}

struct RackList {
    /// Racks in Java `HashMap` iteration order (what `initialize` and `shuffle` walk).
    racks: Vec<(Option<String>, Rack)>,
    /// Rack names sorted (empty first), then shuffled: the striping order.
    names: Vec<Option<String>>,
    total: usize,
    unfenced: usize,
    epoch: u32,
    offset: usize,
}

impl RackList {
    fn new(random: &mut dyn PlacementRandom, brokers: &[UsableBroker]) -> RackList {
        let mut racks: Vec<(Option<String>, Rack)> = Vec::new();
        let (mut total, mut unfenced) = (0, 0);
        for b in brokers {
            let i = match racks.iter().position(|(n, _)| *n == b.rack) {
                Some(i) => i,
                None => {
                    racks.push((b.rack.clone(), Rack::default()));
                    racks.len() - 1
                }
            };
            let rack = &mut racks[i].1;
            if b.fenced {
                rack.fenced.brokers.push(b.id);
            } else {
                unfenced += 1;
                rack.unfenced.brokers.push(b.id);
            }
            total += 1;
        }
        let mut names: Vec<Option<String>> = racks.iter().map(|(n, _)| n.clone()).collect();
        java_hashmap_order(&mut racks);
        for (_, rack) in &mut racks {
            rack.fenced.initialize(random);
            rack.unfenced.initialize(random);
        }
        names.sort(); // None sorts first, as Kafka's OptionalStringComparator
        let offset = if names.is_empty() {
            0
        } else {
            random.next_int(names.len() as i32) as usize
        };
        RackList {
            racks,
            names,
            total,
            unfenced,
            epoch: 0,
            offset,
        }
    }

    fn rack(&mut self, index: usize) -> &mut Rack {
        let name = &self.names[index];
        let i = self
            .racks
            .iter()
            .position(|(n, _)| n == name)
            .expect("every name has its rack");
        &mut self.racks[i].1
    }

    fn place(
        &mut self,
        random: &mut dyn PlacementRandom,
        rf: i32,
    ) -> Result<Vec<i32>, PlacementError> {
        check_positive(rf)?;
        check_enough(rf, self.total)?;
        check_unfenced(self.unfenced)?;
        // After as many placements as unfenced brokers, shuffle to avoid repeating them (not
        // with a single unfenced broker: the round would never end).
        if self.epoch as usize == self.unfenced && self.unfenced > 1 {
            shuffle(&mut self.names, random);
            for (_, rack) in &mut self.racks {
                rack.fenced.shuffle(random);
                rack.unfenced.shuffle(random);
            }
            self.epoch = 0;
        }
        if self.offset == self.names.len() {
            self.offset = 0;
        }
        let n = self.names.len();
        let epoch = self.epoch;
        let mut out = Vec::with_capacity(rf as usize);
        // The leader: the first rack from `offset` on with an unfenced broker left this round.
        let mut first = self.offset;
        loop {
            if let Some(b) = self.rack(first).unfenced.next(epoch) {
                out.push(b);
                break;
            }
            first = (first + 1) % n;
        }
        let mut first = Some(first);
        let mut index = self.offset;
        for _ in 1..rf {
            loop {
                let got = if first == Some(index) {
                    first = None;
                    None
                } else {
                    self.rack(index).next(epoch)
                };
                index = (index + 1) % n;
                if let Some(b) = got {
                    out.push(b);
                    break;
                }
            }
        }
        self.epoch += 1;
        self.offset += 1;
        Ok(out)
    }
}

/// `Collections.shuffle(list, random)` for a random-access list.
fn shuffle<T>(v: &mut [T], random: &mut dyn PlacementRandom) {
    for i in (2..=v.len()).rev() {
        let j = random.next_int(i as i32) as usize;
        v.swap(i - 1, j);
    }
}

/// Reorders racks as a `java.util.HashMap<Optional<String>, _>` of them iterates: by bucket
/// (the spread hash of `Optional.hashCode()` masked by the table size), then insertion order.
/// Kafka initialises each rack's broker lists in that order, drawing random numbers as it goes.
fn java_hashmap_order(racks: &mut [(Option<String>, Rack)]) {
    let mut table = 16usize;
    while racks.len() > table * 3 / 4 {
        table *= 2;
    }
    let bucket = |name: &Option<String>| {
        let h = match name {
            None => 0i32,
            Some(s) => s
                .encode_utf16()
                .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32)),
        };
        let spread = (h ^ ((h as u32) >> 16) as i32) as u32 as usize;
        spread & (table - 1)
    };
    racks.sort_by_key(|(n, _)| bucket(n)); // stable: insertion order within a bucket
}

/// The broker's randomness: xorshift64*, seeded from the clock. Placement needs spread, not
/// unpredictability.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    pub fn from_clock() -> XorShift {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        XorShift::new(nanos)
    }
}

impl PlacementRandom for XorShift {
    fn next_int(&mut self, bound: i32) -> i32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound.max(1) as u64) as i32
    }
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
