-- Headless Neovim test of extension/nvim: require('wand').setup() attaches a client named `wand`
-- (the real wand-lsp) to a pipeline file of examples/nyc_taxi with the project as root_dir, and
-- :WandDag puts `wand dag --format mermaid` into a scratch buffer.
--
--   nvim --headless -u NONE -i NONE -l tests/extension/nvim_setup_test.lua
--
-- Binaries: $WAND_LSP or target/debug/wand-lsp; $WAND_CLI or target/debug/wand. Exits non-zero
-- on any failure, or when a binary is missing.

local script = debug.getinfo(1, 'S').source:sub(2)
local repo = vim.fs.normalize(vim.fn.fnamemodify(script, ':p:h:h:h'))
local project = repo .. '/examples/nyc_taxi'
local passed, failed = 0, 0

local function check(name, ok, detail)
  if ok then
    passed = passed + 1
    io.stdout:write('ok - ' .. name .. '\n')
  else
    failed = failed + 1
    io.stdout:write('not ok - ' .. name .. (detail and (': ' .. tostring(detail)) or '') .. '\n')
  end
end

local function finish()
  io.stdout:write(('nvim: %d passed, %d failed\n'):format(passed, failed))
  for _, client in ipairs(vim.lsp.get_clients()) do
    client:stop(true)
  end
  os.exit(failed == 0 and 0 or 1)
end

check('running Neovim 0.11 or newer', vim.fn.has('nvim-0.11') == 1, vim.inspect(vim.version()))

local server = os.getenv('WAND_LSP') or (repo .. '/target/debug/wand-lsp')
local cli = os.getenv('WAND_CLI') or (repo .. '/target/debug/wand')
if vim.fn.executable(server) ~= 1 then
  check('wand-lsp binary at ' .. server, false, 'missing: build it with `cargo build -p wand-lsp` or set WAND_LSP')
  finish()
end

vim.opt.runtimepath:prepend(repo .. '/extension/nvim')
vim.cmd('filetype on')

local ok, wand = pcall(require, 'wand')
check('require("wand") loads', ok, wand)
if not ok then
  finish()
end

-- Root detection, without a server.
check('root of a pipeline file is the project', wand.root_dir(project .. '/pipelines/taxi_etl/metadata.yaml') == project, wand.root_dir(project .. '/pipelines/taxi_etl/metadata.yaml'))
check('root of a block file is the project', wand.root_dir(project .. '/transformers/transform_taxi_data.py') == project)
check('root of the project metadata.yaml is the project', wand.root_dir(project .. '/metadata.yaml') == project)
check('no root outside a project', wand.root_dir(repo .. '/Cargo.toml') == nil, wand.root_dir(repo .. '/Cargo.toml'))
local ref = wand.pipeline_of_path(project .. '/pipelines/taxi_etl/metadata.yaml')
check('pipeline of a path', ref and ref.pipeline == 'taxi_etl' and ref.project == project, vim.inspect(ref))
check('pipeline of a block file is not guessed from its path', wand.pipeline_of_path(project .. '/transformers/transform_taxi_data.py') == nil)

wand.setup({ cmd = { server }, cli = cli })
check('setup defines :WandDag, :WandRun and :WandRunBlock', vim.fn.exists(':WandDag') == 2 and vim.fn.exists(':WandRun') == 2 and vim.fn.exists(':WandRunBlock') == 2)
check('run command line', vim.deep_equal(wand.run_cmd('/p', 'etl', 'clean'), { cli, 'run', '/p', 'etl', '--block', 'clean' }))

local file = project .. '/pipelines/taxi_etl/metadata.yaml'
vim.cmd.edit(vim.fn.fnameescape(file))
local bufnr = vim.api.nvim_get_current_buf()
check('the buffer is yaml', vim.bo[bufnr].filetype == 'yaml', vim.bo[bufnr].filetype)

local client
local attached = vim.wait(15000, function()
  client = vim.lsp.get_clients({ name = 'wand', bufnr = bufnr })[1]
  return client ~= nil and client.initialized == true
end, 50)
check('a client named wand attaches and initializes', attached, client and 'not initialized' or 'no client')
if not attached then
  finish()
end
check('root_dir is examples/nyc_taxi', vim.fs.normalize(client.root_dir or client.config.root_dir or '') == project, client.root_dir)
check('the client runs the configured binary', client.config.cmd[1] == server, vim.inspect(client.config.cmd))

-- A second file of the same project reuses the client.
vim.cmd.edit(vim.fn.fnameescape(project .. '/transformers/transform_taxi_data.py'))
local py = vim.api.nvim_get_current_buf()
vim.wait(5000, function()
  return #vim.lsp.get_clients({ name = 'wand', bufnr = py }) > 0
end, 50)
local py_clients = vim.lsp.get_clients({ name = 'wand', bufnr = py })
check('a block file of the same project shares the client', #py_clients == 1 and py_clients[1].id == client.id, #py_clients)
check('only one wand client runs', #vim.lsp.get_clients({ name = 'wand' }) == 1, #vim.lsp.get_clients({ name = 'wand' }))

-- The server knows which pipelines use the block file.
local response = client:request_sync('wand/dag', { uri = vim.uri_from_bufnr(py) }, 10000, py)
local dag = response and response.result
check('wand/dag answers for a block file', dag and (dag.pipeline == 'taxi_etl' or dag.pipeline == 'taxi_embedded'), vim.inspect(response))

-- :WandDag on the pipeline file.
vim.cmd.edit(vim.fn.fnameescape(file))
if vim.fn.executable(cli) == 1 then
  vim.cmd('WandDag')
  local dag_buf = vim.fn.bufnr('wand://dag/taxi_etl')
  local lines = dag_buf ~= -1 and vim.api.nvim_buf_get_lines(dag_buf, 0, -1, false) or {}
  local text = table.concat(lines, '\n')
  check(':WandDag opens the mermaid graph in a scratch buffer', dag_buf ~= -1 and vim.bo[dag_buf].buftype == 'nofile' and text:match('load_taxi_data') and text:match('transform_taxi_data') and (text:match('flowchart') or text:match('graph')), text)
else
  check(':WandDag (wand CLI at ' .. cli .. ')', false, 'missing: build it with `cargo build -p wand-kernel` or set WAND_CLI')
end

-- Files outside a project get no client.
vim.cmd.edit(vim.fn.fnameescape(repo .. '/Cargo.toml'))
vim.cmd('setfiletype yaml')
vim.wait(300)
check('no client outside a Mage project', #vim.lsp.get_clients({ bufnr = vim.api.nvim_get_current_buf() }) == 0)

-- Neovim 0.11 style: lsp/wand.lua found on 'runtimepath' by vim.lsp.enable('wand').
vim.api.nvim_clear_autocmds({ group = 'wand' })
for _, it in ipairs(vim.lsp.get_clients({ name = 'wand' })) do
  it:stop(true)
end
vim.wait(3000, function()
  return #vim.lsp.get_clients({ name = 'wand' }) == 0
end, 50)
vim.lsp.config('wand', { cmd = { server } })
vim.lsp.enable('wand')
vim.cmd.edit(vim.fn.fnameescape(project .. '/pipelines/taxi_embedded/metadata.yaml'))
local embedded = vim.api.nvim_get_current_buf()
local enabled
local enabled_ok = vim.wait(15000, function()
  enabled = vim.lsp.get_clients({ name = 'wand', bufnr = embedded })[1]
  return enabled ~= nil and enabled.initialized == true
end, 50)
check("vim.lsp.enable('wand') attaches with lsp/wand.lua", enabled_ok and vim.fs.normalize(enabled.root_dir or '') == project, enabled and enabled.root_dir)

finish()
