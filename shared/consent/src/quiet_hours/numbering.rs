//! The numbering plan: each US and Canadian geographic area code, with its country,
//! state or province and the time zones it spans (`data/nanp-area-codes.tsv`).

use std::sync::LazyLock;

use crate::data::{rows, DataError};
use crate::zone::Zone;

pub(super) static AREA_CODES_TSV: &str = include_str!("../../data/nanp-area-codes.tsv");

/// Area codes indexed by their number (0-999); `None` for codes not in the table.
static AREAS: LazyLock<Vec<Option<AreaInfo>>> = LazyLock::new(|| {
    parse_area_codes(AREA_CODES_TSV)
        .unwrap_or_else(|e| panic!("embedded nanp-area-codes.tsv is invalid (a build bug): {e}"))
});

/// What the numbering plan says about one area code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaInfo {
    pub area_code: u16,
    /// `US` or `CA`.
    pub country: &'static str,
    /// Two-letter state, district or province code (`NJ`, `DC`, `ON`).
    pub region: String,
    /// Place name from the numbering plan ("San Antonio, TX").
    pub name: &'static str,
    /// Every zone the area code spans; never empty.
    pub time_zones: Vec<Zone>,
}

/// What the table says about an area code, or `None` when it is not a US or
/// Canadian geographic area code.
pub fn area_info(area_code: u16) -> Option<&'static AreaInfo> {
    AREAS.get(usize::from(area_code))?.as_ref()
}

/// Every area code in the table, ascending.
pub fn area_codes() -> impl Iterator<Item = &'static AreaInfo> {
    AREAS.iter().flatten()
}

pub(super) fn parse_area_codes(text: &'static str) -> Result<Vec<Option<AreaInfo>>, DataError> {
    let mut areas: Vec<Option<AreaInfo>> = vec![None; 1000];
    for (line, cols) in rows(text) {
        let [code, country, region, name, zones] = cols[..] else {
            return Err(DataError::new(
                line,
                format!("expected 5 columns, found {}", cols.len()),
            ));
        };
        let area_code: u16 = code
            .parse()
            .ok()
            .filter(|c| (200..=999).contains(c))
            .ok_or_else(|| DataError::new(line, format!("bad area code {code:?}")))?;
        if !matches!(country, "US" | "CA") {
            return Err(DataError::new(line, format!("bad country {country:?}")));
        }
        if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(DataError::new(line, format!("bad region {region:?}")));
        }
        let time_zones = zones
            .split(',')
            .map(|z| {
                z.trim()
                    .parse::<Zone>()
                    .map_err(|_| DataError::new(line, format!("unknown time zone {z:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let slot = &mut areas[usize::from(area_code)];
        if slot.is_some() {
            return Err(DataError::new(
                line,
                format!("duplicate area code {area_code}"),
            ));
        }
        *slot = Some(AreaInfo {
            area_code,
            country,
            region: region.to_owned(),
            name,
            time_zones,
        });
    }
    Ok(areas)
}
