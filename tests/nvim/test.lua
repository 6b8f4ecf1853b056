-- A real client against wand-lsp: headless Neovim 0.11 opens a pipeline with a cycle and a
-- dangling upstream, waits for both diagnostics, then jumps to an upstream block's file.
--
-- nvim --headless -u NONE -l tests/nvim/test.lua <wand-lsp binary> <copy of examples/broken>
-- Prints one "ok - …" / "not ok - …" line per check; exits non-zero when any check fails.

local server, project = arg[1], arg[2]
local failed = 0

local function check(name, ok, detail)
  if ok then
    print('ok - ' .. name)
  else
    failed = failed + 1
    print('not ok - ' .. name .. (detail and (': ' .. detail) or ''))
  end
end

local yaml = project .. '/pipelines/dag_errors/metadata.yaml'
vim.cmd.edit(vim.fn.fnameescape(yaml))
local buf = vim.api.nvim_get_current_buf()

local client_id = vim.lsp.start({
  name = 'wand',
  cmd = { server },
  root_dir = project,
  workspace_folders = { { uri = vim.uri_from_fname(project), name = 'broken' } },
}, { bufnr = buf })
check('client started', client_id ~= nil)

local function codes()
  local found = {}
  for _, diagnostic in ipairs(vim.diagnostic.get(buf)) do
    found[diagnostic.code] = diagnostic
  end
  return found
end

local got = vim.wait(30000, function()
  local found = codes()
  return found['dependency-cycle'] ~= nil and found['unknown-upstream'] ~= nil
end, 50)
local found = codes()
check('dependency-cycle diagnostic', found['dependency-cycle'] ~= nil, vim.inspect(vim.tbl_keys(found)))
check('unknown-upstream diagnostic', found['unknown-upstream'] ~= nil)
if got then
  local cycle = found['dependency-cycle']
  check('cycle on line 31', cycle.lnum == 30, 'lnum ' .. tostring(cycle.lnum))
  check('unknown upstream names load_trip', found['unknown-upstream'].message:find('load_trip', 1, true) ~= nil)
end

-- The first `- load_trips` under `uuid: clean_trips` is an upstream entry.
local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
local target
local in_clean = false
for idx, line in ipairs(lines) do
  if line:match('uuid: clean_trips') then in_clean = true end
  if in_clean and line:match('^  %- load_trips$') then target = idx break end
end
check('found the upstream entry', target ~= nil)
if target then
  vim.api.nvim_win_set_cursor(0, { target, 5 })
  vim.lsp.buf.definition()
  local jumped = vim.wait(10000, function()
    return vim.api.nvim_buf_get_name(0):match('data_loaders/load_trips%.py$') ~= nil
  end, 50)
  check('definition jumps to data_loaders/load_trips.py', jumped, vim.api.nvim_buf_get_name(0))
end

vim.lsp.stop_client(client_id, true)
os.exit(failed == 0 and 0 or 1)
