// An earning rule's page: hides the fields the chosen kind does not use (rows with an error always stay
// visible). Which fields each kind uses comes from loyalty.admin.rules, in the JSON element before this script.
(function () {
  "use strict";
  var data = document.getElementById("earning-rule-kind-fields");
  var kind = document.getElementById("id_kind");
  if (!data || !kind) { return; }
  var config = JSON.parse(data.textContent);
  function update() {
    var used = config.by_kind[kind.value];
    config.dependent.forEach(function (name) {
      document.querySelectorAll(".form-row.field-" + name).forEach(function (row) {
        var hide = used && used.indexOf(name) === -1 && !row.classList.contains("errors");
        row.style.display = hide ? "none" : "";
      });
    });
  }
  kind.addEventListener("change", update);
  update();
})();
