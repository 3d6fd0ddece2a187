// Progressive only: a button with data-copy="ID" copies the value (or the text) of the element with that id,
// and shows data-copied (or ✓) for a moment; without JavaScript the text is there to select.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  var source = button && document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) { return; }
  event.preventDefault();
  navigator.clipboard.writeText("value" in source ? source.value : source.textContent).then(function () {
    var label = button.textContent;
    button.textContent = button.getAttribute("data-copied") || "✓";
    setTimeout(function () { button.textContent = label; }, 1500);
  });
});
