// Times in the contact's zone: what staff type (a wall-clock date and time there) to an instant,
// and instants back to words in that zone. Only the browser's Intl, no library.

function offsetMs(zone, instant) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(instant);
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  const wall = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour") % 24, get("minute"), get("second"));
  return wall - Math.floor(instant.getTime() / 1000) * 1000;
}

/** The instant at which the clocks in `zone` show `date` (YYYY-MM-DD) `time` (HH:MM). */
export function instantIn(zone, date, time) {
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  const first = wall - offsetMs(zone, new Date(wall));
  return new Date(wall - offsetMs(zone, new Date(first)));
}

/** YYYY-MM-DD and HH:MM of `instant` on the clocks of `zone`. */
export function wallClock(zone, instant) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).formatToParts(instant);
  const get = (type) => parts.find((p) => p.type === type).value;
  return { date: `${get("year")}-${get("month")}-${get("day")}`, time: `${get("hour") % 24}`.padStart(2, "0") + `:${get("minute")}` };
}

/** "Wed, Dec 2, 3:00 PM CST" in `zone`. */
export function spoken(zone, iso) {
  return new Intl.DateTimeFormat("en-US", {
    timeZone: zone, weekday: "short", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZoneName: "short",
  }).format(new Date(iso));
}

/** "3:10 PM" in `zone`. */
export function clock(zone, iso) {
  return new Intl.DateTimeFormat("en-US", { timeZone: zone, hour: "numeric", minute: "2-digit" }).format(new Date(iso));
}

export function isZone(zone) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
