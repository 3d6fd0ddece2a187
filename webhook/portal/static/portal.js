// Progressive only: a button with data-copy="TEXT" copies TEXT; without JavaScript the text is there to select.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button || !navigator.clipboard) { return; }
  event.preventDefault();
  navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
    var label = button.textContent;
    button.textContent = button.getAttribute("data-copied") || "✓";
    setTimeout(function () { button.textContent = label; }, 1500);
  });
});
