// Reading lists this browser remembers, and one-click "Add to reading list".
//
// The edit page leaves its list's slug, token and title in #list-memory; this script
// keeps them in localStorage (never sent anywhere but to this site, with an add) and
// makes the list the one new items go to. Then every "Add to reading list" link (a link
// to the list picker, /lists/add?key=KEY, which works without JavaScript) becomes a
// button that adds the item with one click through /lists/<slug>/items.json. The
// picker offers the remembered lists, and /lists/mine shows them. Without JavaScript or
// storage nothing changes: the links lead to the picker. No inline script or style
// (the site's CSP), only DOM built with textContent.
(function () {
  "use strict";
  var STORE = "biblio.readingLists";
  var storage = null;
  try {
    storage = window.localStorage;
    storage.setItem(STORE + ".probe", "1");
    storage.removeItem(STORE + ".probe");
  } catch (e) {
    storage = null;
  }

  function load() {
    var data = null;
    try { data = JSON.parse(storage.getItem(STORE) || "null"); } catch (e) { data = null; }
    if (!data || typeof data !== "object" || typeof data.lists !== "object" || !data.lists) {
      data = { current: null, lists: {} };
    }
    if (data.current && !data.lists[data.current]) { data.current = null; }
    return data;
  }

  function save(data) {
    try { storage.setItem(STORE, JSON.stringify(data)); } catch (e) { /* full or denied */ }
  }

  function editUrl(slug, list) {
    return "/lists/" + encodeURIComponent(slug) + "/edit?token=" + encodeURIComponent(list.token);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function plural(n, noun) { return n + " " + noun + (n === 1 ? "" : "s"); }

  function quoted(title) { return "\u201c" + title + "\u201d"; }

  // --- the edit page: remember its list and make it the current one -------------------
  function rememberFromPage(data) {
    var memory = document.getElementById("list-memory");
    if (!memory) { return; }
    var slug = memory.getAttribute("data-slug");
    var keys = (memory.getAttribute("data-keys") || "").split(" ").filter(Boolean);
    data.lists[slug] = {
      title: memory.getAttribute("data-title"),
      token: memory.getAttribute("data-token"),
      keys: keys,
      count: keys.length,
      at: Date.now()
    };
    data.current = slug;
    save(data);
    document.querySelectorAll("[data-current-note]").forEach(function (n) { n.hidden = false; });
  }

  // --- the bar that says where new items go ----------------------------------------------
  function listBar(data) {
    var main = document.getElementById("main");
    var bar = document.getElementById("list-bar");
    var list = data.current && data.lists[data.current];
    if (!main || !list) { return; }
    if (!bar) {
      bar = el("p", { id: "list-bar", "class": "list-bar" });
      main.insertBefore(bar, main.firstChild);
    }
    bar.textContent = "";
    bar.appendChild(document.createTextNode("Adding to "));
    bar.appendChild(el("a", { href: editUrl(data.current, list) }, quoted(list.title)));
    bar.appendChild(el("span", { "class": "muted" }, " (" + plural(list.count || 0, "item") + ")"));
    bar.appendChild(document.createTextNode(" \u00b7 "));
    bar.appendChild(el("a", { href: "/lists/" + encodeURIComponent(data.current) }, "View and export"));
    bar.appendChild(document.createTextNode(" \u00b7 "));
    bar.appendChild(el("a", { href: "/lists/mine" }, "Your lists"));
  }

  // --- one-click adds -------------------------------------------------------------------
  function showAdded(holder, slug, list, key) {
    var link = holder.querySelector(".add-link, .add-button, .in-list");
    var done = el("a", { "class": "in-list", href: editUrl(slug, list) + "#item-" + key },
                  "\u2713 In " + quoted(list.title));
    link.parentNode.replaceChild(done, link);
  }

  // What each add did: shown beside its button, and said once by the page's live region
  // (made with the page, as screen readers announce changes only to regions they know).
  function say(holder, text) {
    var status = holder.querySelector(".add-status");
    if (!status) {
      status = el("span", { "class": "add-status" });
      holder.appendChild(status);
    }
    status.textContent = text;
    var live = document.getElementById("list-live");
    if (live) { live.textContent = text; }
  }

  function addOne(data, holder, button, key) {
    var slug = data.current;
    var list = data.lists[slug];
    button.disabled = true;
    say(holder, "Adding\u2026");
    fetch("/lists/" + encodeURIComponent(slug) + "/items.json", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ token: list.token, keys: [key] })
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; });
    }).then(function (answer) {
      var fresh = load();
      var kept = fresh.lists[slug];
      if (answer.status === 403 || answer.status === 404) {
        if (kept) { delete fresh.lists[slug]; }
        if (fresh.current === slug) { fresh.current = null; }
        save(fresh);
        say(holder, "That list is gone or its link changed; this browser forgot it.");
        button.replaceWith(el("a", { "class": "add-link", href: "/lists/add?key=" + key }, "Choose a list"));
        return;
      }
      if (!answer.body || !answer.body.ok) {
        throw new Error((answer.body && answer.body.error) || "the server said no");
      }
      kept = kept || list;
      kept.keys = answer.body.rows.map(function (row) { return row.key; });
      kept.count = answer.body.count;
      kept.title = answer.body.title;
      kept.at = Date.now();
      fresh.lists[slug] = kept;
      save(fresh);
      showAdded(holder, slug, kept, key);
      say(holder, "Added to " + quoted(kept.title) + ", now " + plural(kept.count, "item") + ".");
      listBar(fresh);
    }).catch(function (error) {
      button.disabled = false;
      say(holder, "Could not add it (" + error.message + "); try again.");
    });
  }

  function enhanceAddLinks(data) {
    var holders = document.querySelectorAll(".add-to-list");
    var list = data.current && data.lists[data.current];
    if (!holders.length || !list) { return; }
    holders.forEach(function (holder) {
      var link = holder.querySelector(".add-link");
      if (!link) { return; }
      var key = (/[?&]key=([0-9A-Z]{8})/.exec(link.getAttribute("href")) || [])[1];
      if (!key) { return; }
      if ((list.keys || []).indexOf(key) >= 0) {
        showAdded(holder, data.current, list, key);
        return;
      }
      var button = el("button", { type: "button", "class": "add-button secondary" });
      while (link.firstChild) { button.appendChild(link.firstChild); }
      link.parentNode.replaceChild(button, link);
      button.addEventListener("click", function () { addOne(load(), holder, button, key); });
    });
    listBar(data);
    if (!document.getElementById("list-live")) {
      document.body.appendChild(el("div", { id: "list-live", "class": "visually-hidden", role: "status" }));
    }
  }

  // --- the picker: offer the remembered lists ---------------------------------------------
  function offerRemembered(data) {
    var box = document.getElementById("remembered-lists");
    if (!box) { return; }
    var slugs = Object.keys(data.lists).sort(function (a, b) {
      return (data.lists[b].at || 0) - (data.lists[a].at || 0);
    });
    if (!slugs.length) {
      box.appendChild(el("p", { "class": "muted" }, box.getAttribute("data-empty")));
      return;
    }
    var ul = el("ul", { "class": "remembered" });
    slugs.forEach(function (slug) {
      var list = data.lists[slug];
      var button = el("button", { type: "submit", name: "edit_link", value: location.origin + editUrl(slug, list) },
                      "Add to " + quoted(list.title));
      var li = el("li");
      li.appendChild(button);
      li.appendChild(el("span", { "class": "muted" }, " " + plural(list.count || 0, "item")));
      ul.appendChild(li);
    });
    box.appendChild(ul);
  }

  // --- /lists/mine ------------------------------------------------------------------------
  function showMine(data) {
    var box = document.getElementById("my-lists");
    if (!box) { return; }
    var slugs = Object.keys(data.lists).sort(function (a, b) {
      return (data.lists[b].at || 0) - (data.lists[a].at || 0);
    });
    box.textContent = "";
    if (!slugs.length) {
      box.appendChild(el("p", {}, box.getAttribute("data-empty")));
      return;
    }
    var ul = el("ul", { "class": "my-lists" });
    slugs.forEach(function (slug) {
      var list = data.lists[slug];
      var li = el("li", { "data-slug": slug });
      li.appendChild(el("a", { "class": "list-title", href: "/lists/" + encodeURIComponent(slug) }, list.title));
      li.appendChild(el("span", { "class": "muted list-count" }, " " + plural(list.count || 0, "item") + " "));
      var named = function (node) {  // the same words on every row: say which list
        node.appendChild(el("span", { "class": "visually-hidden" }, ": " + quoted(list.title)));
        return node;
      };
      li.appendChild(named(el("a", { href: editUrl(slug, list) }, "Edit")));
      if (data.current === slug) {
        li.appendChild(el("strong", { "class": "current" }, " New items go here"));
      } else {
        var use = named(el("button", { type: "button", "class": "secondary" }, "Add new items here"));
        use.addEventListener("click", function () {
          var fresh = load();
          fresh.current = slug;
          save(fresh);
          showMine(fresh);
        });
        li.appendChild(use);
      }
      var forget = named(el("button", { type: "button", "class": "secondary" }, "Forget on this browser"));
      forget.addEventListener("click", function () {
        var fresh = load();
        delete fresh.lists[slug];
        if (fresh.current === slug) { fresh.current = null; }
        save(fresh);
        showMine(fresh);
      });
      li.appendChild(forget);
      ul.appendChild(li);
    });
    box.appendChild(ul);
  }

  function refreshMine() {
    // Titles and counts may have changed elsewhere; deleted lists are forgotten.
    var data = load();
    Object.keys(data.lists).forEach(function (slug) {
      fetch("/lists/" + encodeURIComponent(slug) + ".json", { headers: { "Accept": "application/json" } })
        .then(function (response) {
          var fresh = load();
          if (response.status === 404) {
            delete fresh.lists[slug];
            if (fresh.current === slug) { fresh.current = null; }
            save(fresh);
            showMine(fresh);
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (body) {
          if (!body || !body.ok) { return; }
          var fresh = load();
          var list = fresh.lists[slug];
          if (!list) { return; }
          list.title = body.title;
          list.count = body.count;
          list.keys = body.rows.map(function (row) { return row.key; });
          save(fresh);
          showMine(fresh);
        })
        .catch(function () { /* offline: keep what we had */ });
    });
  }

  if (!storage) { return; }
  var data = load();
  rememberFromPage(data);
  enhanceAddLinks(data);
  offerRemembered(data);
  if (document.getElementById("my-lists")) {
    showMine(data);
    refreshMine();
  }
})();
