// Tabs by URL hash, so that a page can be linked and reloaded onto the tab it shows.
import { startLive } from "/dashboard/live.js";
import { showRepository } from "/dashboard/repository.js";

function route() {
  const tab = location.hash === "#repository" ? "repository" : "live";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.tab === tab);
  document.getElementById("tab-live").hidden = tab !== "live";
  document.getElementById("tab-repository").hidden = tab !== "repository";
  if (tab === "repository") void showRepository();
}

window.addEventListener("hashchange", route);
startLive();
route();
