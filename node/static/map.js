/* Commons Node — maps drawn over what the page already lists.
 *
 * Progressive enhancement: every place shown on a map is also on the page as
 * text (a list or table whose items carry data-lat, data-lon, data-name and
 * data-href), so without JavaScript, or without Leaflet, nothing is lost. A
 * map is a hidden element with data-map; this script fills it in and shows it.
 *
 *   data-markers-from   id of the element holding the [data-lat][data-lon] items
 *   data-tile-url       tile URL template; empty: no tiles, markers on a plain background
 *   data-attribution, data-attribution-url   credit for the tiles
 *   data-center-lat, data-center-lon, data-center-label   the point distances are measured from
 *   data-pick-lat, data-pick-lon, data-pick-status   ids of the inputs a click on the map fills,
 *                                                     and of a live region that says so
 *   data-pick-choice    id of a radio button a click also selects ("at this point")
 *   data-pick-done      what the live region adds after the point (default: search to use it)
 *
 * User text only ever reaches the page as DOM text, never as HTML.
 */
(function () {
  "use strict";

  var WORLD = [[-55, -170], [70, 175]];

  function number(value) {
    var parsed = parseFloat(value);
    return isFinite(parsed) ? parsed : null;
  }

  function byId(id) {
    return id ? document.getElementById(id) : null;
  }

  function popupFor(item) {
    var box = document.createElement("div");
    var name = item.getAttribute("data-name") || "";
    var href = item.getAttribute("data-href");
    var title = document.createElement(href ? "a" : "strong");
    title.textContent = name;
    if (href) {
      title.href = href;
    }
    box.appendChild(title);
    var detail = item.getAttribute("data-detail");
    if (detail) {
      var line = document.createElement("div");
      line.textContent = detail;
      box.appendChild(line);
    }
    return box;
  }

  function addTiles(map, el) {
    var url = el.getAttribute("data-tile-url");
    if (!url) {
      return;
    }
    L.tileLayer(url, { maxZoom: 19, subdomains: "abc" }).addTo(map);
    var text = el.getAttribute("data-attribution");
    if (!text) {
      return;
    }
    var credit = document.createElement("span");
    var link = el.getAttribute("data-attribution-url");
    var label = document.createElement(link ? "a" : "span");
    label.textContent = text;
    if (link) {
      label.href = link;
      label.rel = "noopener";
    }
    credit.appendChild(label);
    L.control.attribution({ prefix: false }).addAttribution(credit.innerHTML).addTo(map);
  }

  function addMarkers(map, el) {
    var source = byId(el.getAttribute("data-markers-from"));
    var items = source ? source.querySelectorAll("[data-lat][data-lon]") : [];
    var points = [];
    Array.prototype.forEach.call(items, function (item) {
      var lat = number(item.getAttribute("data-lat"));
      var lon = number(item.getAttribute("data-lon"));
      if (lat === null || lon === null) {
        return;
      }
      var name = item.getAttribute("data-name") || "";
      L.marker([lat, lon], { title: name, alt: name, riseOnHover: true })
        .bindPopup(popupFor(item))
        .addTo(map);
      points.push([lat, lon]);
    });
    return points;
  }

  function centerPoint(el) {
    var lat = number(el.getAttribute("data-center-lat"));
    var lon = number(el.getAttribute("data-center-lon"));
    return lat === null || lon === null ? null : [lat, lon];
  }

  function markCenter(map, point, label) {
    return L.circleMarker(point, { radius: 8, className: "map__center", interactive: false })
      .bindTooltip(label, { direction: "top", offset: [0, -8] })
      .addTo(map);
  }

  function enablePicking(map, el, center) {
    var latInput = byId(el.getAttribute("data-pick-lat"));
    var lonInput = byId(el.getAttribute("data-pick-lon"));
    if (!latInput || !lonInput) {
      return;
    }
    var status = byId(el.getAttribute("data-pick-status"));
    var choice = byId(el.getAttribute("data-pick-choice"));
    var done = el.getAttribute("data-pick-done") || "Search to use it.";
    var picked = null;
    el.classList.add("map--pickable");
    map.on("click", function (event) {
      var lat = event.latlng.lat.toFixed(4);
      var lon = L.Util.wrapNum(event.latlng.lng, [-180, 180], true).toFixed(4);
      latInput.value = lat;
      lonInput.value = lon;
      if (choice) {
        choice.checked = true;
      }
      if (center) {
        map.removeLayer(center);
        center = null;
      }
      if (picked) {
        picked.setLatLng(event.latlng);
      } else {
        picked = markCenter(map, event.latlng, "Chosen point");
      }
      if (status) {
        status.textContent = "Point set to " + lat + ", " + lon + ". " + done;
      }
    });
  }

  function setup(el) {
    el.hidden = false;
    var map = L.map(el, { attributionControl: false, scrollWheelZoom: false, worldCopyJump: true });
    addTiles(map, el);
    var points = addMarkers(map, el);
    var point = centerPoint(el);
    var center = null;
    if (point) {
      center = markCenter(map, point, el.getAttribute("data-center-label") || "");
      points.push(point);
    }
    if (points.length === 1) {
      map.setView(points[0], 11);
    } else if (points.length > 1) {
      map.fitBounds(points, { padding: [32, 32], maxZoom: 12 });
    } else {
      map.fitBounds(WORLD);
    }
    enablePicking(map, el, center);
  }

  function start() {
    if (typeof L === "undefined") {
      return; // Leaflet did not load: the page's own list stands on its own.
    }
    var maps = document.querySelectorAll("[data-map]");
    if (maps.length) {
      document.documentElement.classList.add("has-map");
    }
    Array.prototype.forEach.call(maps, setup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
